"""Quantized copies of the merged model, each re-loaded from disk and measured like a user would.

A quantized model that answers worse must show it: every export is loaded back from its folder,
scored for perplexity on the golden answers and asked the golden questions, and compared with the
merged model on the same inputs. Formats:

- `bnb-nf4`: bitsandbytes NF4 with double quantization, serialized in 4-bit (CPU and GPU);
- `torchao-int8`: torchao int8 weight-only (CPU and GPU);
- `quanto-int8`, `quanto-int4`: optimum-quanto weight-only, serialized with its own loader (CPU);
- `gptq-w4a16`, `awq-w4a16`: llm-compressor one-shot with calibration rows, for vLLM (GPU only).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llm_assets.evaluation.generation import Generations, generate_answers, prompt_texts
from llm_assets.evaluation.perplexity import perplexity
from llm_assets.settings import GenerationConfig
from llm_assets.storage import folder_size

EXPORT_MARKER = "llm_assets_export.json"
GPU_ONLY_FORMATS = ("gptq-w4a16", "awq-w4a16")

AnswerScorer = Callable[[list[str], list[str]], float]


class ExportUnavailable(RuntimeError):
    """The format cannot be produced on this machine (e.g. GPTQ without a GPU)."""


@dataclass(frozen=True)
class ExportMeasurement:
    format: str
    path: str
    size_mb: float
    load_seconds: float
    tokens_per_second: float
    perplexity: float
    perplexity_delta: float
    golden_rouge_l: float
    golden_rouge_l_delta: float

    def as_row(self) -> dict[str, object]:
        return asdict(self)


def _device_map() -> dict[str, Any]:
    import torch

    return {"": 0 if torch.cuda.is_available() else "cpu"}


def _finish(model_dir: Path, output_dir: Path, export_format: str, loader: str) -> None:
    """Tokenizer (with the training chat template) beside the weights, and a marker saying how
    the folder loads."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(model_dir).save_pretrained(output_dir)
    (output_dir / EXPORT_MARKER).write_text(
        json.dumps({"format": export_format, "loader": loader}, indent=2), encoding="utf-8"
    )


def quantize_bnb_nf4(model_dir: Path, output_dir: Path, calibration: list[str]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    gpu = torch.cuda.is_available()
    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if gpu else torch.float32,
    )
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, quantization_config=config, device_map=_device_map()
    )
    model.save_pretrained(output_dir, safe_serialization=True)
    _finish(model_dir, output_dir, "bnb-nf4", "transformers")


def quantize_torchao_int8(model_dir: Path, output_dir: Path, calibration: list[str]) -> None:
    """int8 weight-only; torchao tensor subclasses are not safetensors-serializable, so the
    weights are a torch checkpoint that transformers loads back through the saved config."""
    import torch
    from torchao.quantization import Int8WeightOnlyConfig
    from transformers import AutoModelForCausalLM, TorchAoConfig

    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        quantization_config=TorchAoConfig(Int8WeightOnlyConfig()),
        dtype=torch.float32,
        device_map=_device_map(),
    )
    model.save_pretrained(output_dir, safe_serialization=False)
    _finish(model_dir, output_dir, "torchao-int8", "transformers")


def _quantize_quanto(bits: int) -> Callable[[Path, Path, list[str]], None]:
    def quantize(model_dir: Path, output_dir: Path, calibration: list[str]) -> None:
        """optimum-quanto weight-only; transformers' own quanto integration cannot save, so the
        model goes through quanto's QuantizedModelForCausalLM, which can. lm_head stays in full
        precision: it is small next to a real model and quantizing it hurts the most."""
        import torch
        from optimum.quanto import QuantizedModelForCausalLM, qint4, qint8
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        quantized = QuantizedModelForCausalLM.quantize(
            model, weights=qint4 if bits == 4 else qint8, exclude="lm_head"
        )
        quantized.save_pretrained(str(output_dir))
        _finish(model_dir, output_dir, f"quanto-int{bits}", "quanto")

    return quantize


def _quantize_llm_compressor(scheme: str) -> Callable[[Path, Path, list[str]], None]:
    def quantize(model_dir: Path, output_dir: Path, calibration: list[str]) -> None:
        """W4A16 with llm-compressor's one-shot GPTQ or AWQ, calibrated on held-out
        conversations, saved compressed for vLLM. Needs a CUDA GPU."""
        import torch

        if not torch.cuda.is_available():
            raise ExportUnavailable(
                f"export format '{scheme}' needs a CUDA GPU (llm-compressor calibrates on it); "
                "use it in a GPU profile (conf/gpu-7b.yaml), or choose bnb-nf4, torchao-int8, "
                "quanto-int8 or quanto-int4 on CPU"
            )
        try:
            from llmcompressor import oneshot
        except ImportError as error:
            raise ExportUnavailable(
                f"export format '{scheme}' needs the llmcompressor package: pip install "
                "llmcompressor on the GPU machine"
            ) from error
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if scheme == "gptq-w4a16":
            from llmcompressor.modifiers.quantization import GPTQModifier

            recipe: Any = GPTQModifier(targets="Linear", scheme="W4A16", ignore=["lm_head"])
        else:
            from llmcompressor.modifiers.awq import AWQModifier

            recipe = AWQModifier(targets="Linear", scheme="W4A16", ignore=["lm_head"])
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch.bfloat16, device_map=_device_map()
        )
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        oneshot(
            model=model,
            tokenizer=tokenizer,
            dataset=Dataset.from_dict({"text": calibration}),
            recipe=recipe,
            num_calibration_samples=len(calibration),
        )
        model.save_pretrained(output_dir, save_compressed=True)
        _finish(model_dir, output_dir, scheme, "transformers")

    return quantize


QUANTIZERS: dict[str, Callable[[Path, Path, list[str]], None]] = {
    "bnb-nf4": quantize_bnb_nf4,
    "torchao-int8": quantize_torchao_int8,
    "quanto-int8": _quantize_quanto(8),
    "quanto-int4": _quantize_quanto(4),
    "gptq-w4a16": _quantize_llm_compressor("gptq-w4a16"),
    "awq-w4a16": _quantize_llm_compressor("awq-w4a16"),
}


def load_export(model_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) of a merged or exported folder, loaded the way its marker says."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    marker = model_dir / EXPORT_MARKER
    loader = json.loads(marker.read_text())["loader"] if marker.is_file() else "transformers"
    if loader == "quanto":
        from optimum.quanto import QuantizedModelForCausalLM

        model = QuantizedModelForCausalLM.from_pretrained(str(model_dir))
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, device_map=_device_map())
    model.eval()
    return model, AutoTokenizer.from_pretrained(model_dir)


@dataclass(frozen=True)
class Reference:
    """The merged model's figures that each export is compared with."""

    perplexity: float
    golden_rouge_l: float


def measure_export(
    model_dir: Path,
    label: str,
    conversations: list[list[dict[str, str]]],
    max_length: int,
    generation: GenerationConfig,
    score_answers: AnswerScorer,
    reference: Reference | None = None,
) -> ExportMeasurement:
    """Load `model_dir` as a user would, then: answer perplexity on `conversations`, greedy
    answers to their questions scored against their reference answers, and generation speed."""
    started = time.perf_counter()
    model, tokenizer = load_export(model_dir)
    load_seconds = time.perf_counter() - started
    score = perplexity(model, tokenizer, conversations, max_length).perplexity
    prompts = prompt_texts(tokenizer, conversations)
    # One short untimed answer first: the first generate call pays for kernel set-up, which
    # would otherwise make whichever format is measured first look slow.
    generate_answers(
        model, tokenizer, prompts[:1], generation.model_copy(update={"max_new_tokens": 2})
    )
    answers = generate_answers(model, tokenizer, prompts, generation, label=label)
    return export_measurement(
        label, model_dir, load_seconds, score, answers, conversations, score_answers, reference
    )


def export_measurement(
    label: str,
    folder: Path,
    load_seconds: float,
    score: float,
    answers: Generations,
    conversations: list[list[dict[str, str]]],
    score_answers: AnswerScorer,
    reference: Reference | None,
) -> ExportMeasurement:
    """One export's row: its size, load time, speed, perplexity `score`, and the ROUGE-L of its
    `answers` against the conversations' reference answers, both as deltas to `reference`."""
    references = [messages[-1]["content"] for messages in conversations]
    rouge_l = score_answers(answers.answers, references)
    return ExportMeasurement(
        format=label,
        path=str(folder),
        size_mb=round(folder_size(folder) / 2**20, 3),
        load_seconds=round(load_seconds, 3),
        tokens_per_second=round(answers.tokens_per_second, 1),
        perplexity=score,
        perplexity_delta=score - reference.perplexity if reference else 0.0,
        golden_rouge_l=rouge_l,
        golden_rouge_l_delta=rouge_l - reference.golden_rouge_l if reference else 0.0,
    )


def exports_answering_worse(
    rows: list[dict[str, Any]], max_perplexity_increase: float, max_rouge_l_drop: float
) -> list[str]:
    """A sentence for each export whose golden perplexity rose by more than the allowed share of
    the merged model's, or whose golden ROUGE-L fell by more than the allowed amount."""
    merged = next(row for row in rows if row["format"] == "merged-fp32")
    problems = []
    for row in rows:
        if row["format"] == "merged-fp32":
            continue
        allowed = max_perplexity_increase * merged["perplexity"]
        if row["perplexity_delta"] > allowed:
            problems.append(
                f"{row['format']}: perplexity {row['perplexity']:.3f} is "
                f"{row['perplexity_delta']:+.3f} over the merged model's (allowed +{allowed:.3f})"
            )
        if row["golden_rouge_l_delta"] < -max_rouge_l_drop:
            problems.append(
                f"{row['format']}: golden ROUGE-L {row['golden_rouge_l']:.3f} is "
                f"{row['golden_rouge_l_delta']:+.3f} below the merged model's "
                f"(allowed -{max_rouge_l_drop})"
            )
    return problems
