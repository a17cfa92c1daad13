"""GGUF exports of the merged model, for llama.cpp, llama-cpp-python and Ollama.

The merged safetensors folder goes through llama.cpp's own converter (`convert_hf_to_gguf.py`
from the pinned llama-cpp-python source, which `make setup` extracts into the virtualenv) to an
f16 file; q8_0 and the K-quants come from that file through llama.cpp's quantizer
(`llama_model_quantize`), which refuses to re-quantize an already quantized file. Each export is
a folder: `model.gguf`, with the training chat template (`tokenizer.chat_template`) and the
system prompt (`llm_assets.system_prompt`) in its metadata, an Ollama `Modelfile` beside it, and
the training tokenizer (the gateway renders prompts with it; evaluation also tokenizes with it and
hands llama.cpp token ids).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from llm_assets.evaluation.generation import (
    Answerer,
    Generations,
    ModelUnderTest,
    ReferenceScoring,
)
from llm_assets.export.quantize import (
    EXPORT_MARKER,
    AnswerScorer,
    ExportMeasurement,
    ExportUnavailable,
    Reference,
    export_measurement,
)
from llm_assets.settings import GenerationConfig
from llm_assets.training.config import PROMPT_LEARNING_METHODS

# export.formats value -> llama.cpp's name of the file type.
GGUF_FORMATS = {"gguf-f16": "F16", "gguf-q8_0": "Q8_0", "gguf-q4_k_m": "Q4_K_M"}
GGUF_FILE = "model.gguf"
MODELFILE = "Modelfile"
SYSTEM_PROMPT_KEY = "llm_assets.system_prompt"
CONVERTER_ENV_VAR = "LLM_ASSETS_LLAMA_CPP_CONVERTER"
_GENERATION_MARKER = re.compile(r"{%-?\s*(end)?generation\s*-?%}")


def gguf_export_tag(export_format: str) -> str:
    """The MLflow run tag quantized_export sets to the folder of a GGUF export: where
    `llm-assets serve` finds the file of a registered version."""
    return f"llm_assets.export.{export_format}.path"


def converter_script() -> Path:
    """llama.cpp's convert_hf_to_gguf.py: $LLM_ASSETS_LLAMA_CPP_CONVERTER, else the copy
    `make setup` extracts from the llama-cpp-python sdist into <venv>/share/llama.cpp."""
    configured = os.environ.get(CONVERTER_ENV_VAR)
    path = Path(configured) if configured else Path(sys.prefix) / "share/llama.cpp"
    script = path if path.suffix == ".py" else path / "convert_hf_to_gguf.py"
    if not script.is_file() or not (script.parent / "gguf-py").is_dir():
        raise ExportUnavailable(
            f"llama.cpp's converter is not at {script} (with gguf-py/ and conversion/ beside "
            "it): `make setup` extracts it from the llama-cpp-python sdist; or set "
            f"{CONVERTER_ENV_VAR} to the convert_hf_to_gguf.py of a llama.cpp checkout at the "
            "version llama-cpp-python vendors"
        )
    return script


def without_generation_markers(template: str) -> str:
    """The template without `{% generation %}` markers: they only tell trl which tokens to train
    on, render nothing, and llama.cpp's and Ollama's template engines do not know them."""
    return _GENERATION_MARKER.sub("", template)


def _stage_for_conversion(model_dir: Path, stage: Path) -> None:
    """`model_dir` seen through links, with its tokenizer re-saved: same tokens, the training
    template without generation markers."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template = tokenizer.chat_template
    for item in model_dir.iterdir():
        (stage / item.name).symlink_to(item.resolve())
    tokenizer_files = ("tokenizer", "special_tokens_map", "chat_template", "added_tokens")
    for item in stage.iterdir():
        if item.name.startswith(tokenizer_files):
            item.unlink()
    if template:
        tokenizer.chat_template = without_generation_markers(template)
    tokenizer.save_pretrained(stage)


def convert_to_gguf(
    model_dir: Path, output_file: Path, system_prompt: str | None, default_pre: bool = False
) -> None:
    """The safetensors model in `model_dir` as an f16 GGUF file, its chat template and
    `system_prompt` in the metadata. `default_pre`: accept a byte-level BPE tokenizer llama.cpp
    does not know (a tokenizer trained here) with its default pre-tokenizer."""
    script = converter_script()
    with tempfile.TemporaryDirectory(prefix="gguf-convert-") as work:
        stage = Path(work) / "model"
        stage.mkdir()
        _stage_for_conversion(model_dir, stage)
        extra_kv = Path(work) / "extra_kv.json"
        extra_kv.write_text(json.dumps({SYSTEM_PROMPT_KEY: system_prompt or ""}), "utf-8")
        command = [
            sys.executable,
            "-m",
            "llm_assets.export.gguf_converter_run",
            str(script),
            str(extra_kv),
            *(["--default-pre"] if default_pre else []),
            "--",
            str(stage),
            "--outfile",
            str(output_file),
            "--outtype",
            "f16",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ExportUnavailable(
            f"llama.cpp's converter failed on {model_dir} (exit {result.returncode}); its last "
            f"output:\n{result.stderr[-3000:]}"
        )


def quantize_gguf(source: Path, output_file: Path, file_type: str, threads: int = 0) -> None:
    """`source` (an f16/bf16/f32 GGUF file) quantized by llama.cpp to `file_type` (Q8_0,
    Q4_K_M, …). Tensors whose rows do not split into 256-wide K-quant blocks fall back to a
    legacy type (llama.cpp decides and logs it)."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{file_type}")
    params.nthread = threads
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(output_file).encode(), ctypes.byref(params)
    )
    if status != 0 or not output_file.is_file():
        raise ExportUnavailable(
            f"llama.cpp could not quantize {source} to {file_type} (status {status}); the "
            "source must be an f16, bf16 or f32 GGUF file"
        )


def gguf_metadata(path: Path) -> dict[str, Any]:
    """The string and integer fields of a GGUF file's metadata (not the vocabulary arrays)."""
    from gguf import GGUFReader, GGUFValueType

    fields: dict[str, Any] = {}
    for name, field in GGUFReader(str(path)).fields.items():
        if not field.types or field.types[0] == GGUFValueType.ARRAY:
            continue
        part = field.parts[field.data[0]]
        if field.types[0] == GGUFValueType.STRING:
            fields[name] = bytes(part).decode("utf-8")
        else:
            fields[name] = part.tolist()[0]
    return fields


def _chat_parts(tokenizer: Any) -> tuple[str, str, str]:
    """(before the role, between role and content, after the content) of every message, when
    the tokenizer's template renders each message as `before + role + between + content +
    after`; ExportUnavailable otherwise."""
    rendered = tokenizer.apply_chat_template(
        [
            {"role": "system", "content": "\x01"},
            {"role": "user", "content": "\x02"},
        ],
        tokenize=False,
    )
    head, _, tail = rendered.partition("\x01")
    before, _, between = head.rpartition("system")
    after = tail.split("\x02")[0]
    after = after[: -len(f"{before}user{between}")] if after.endswith("user" + between) else ""
    return before, between, after


def ollama_template(tokenizer: Any) -> str:
    """The training chat template as an Ollama (Go) TEMPLATE over `.Messages`, checked to render
    the same text on sample conversations; ExportUnavailable when it cannot be written so."""
    from llm_assets.datasets.chat_template import render_chat

    before, between, after = _chat_parts(tokenizer)
    probes = [
        [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
        [
            {"role": "system", "content": "S."},
            {"role": "user", "content": "Q1?"},
            {"role": "assistant", "content": "A1."},
            {"role": "user", "content": "Q2?"},
            {"role": "assistant", "content": "A2."},
        ],
    ]
    for messages in probes:
        for prompt in (False, True):
            shown = messages[:-1] if prompt else messages
            ours = "".join(f"{before}{m['role']}{between}{m['content']}{after}" for m in shown)
            ours += f"{before}assistant{between}" if prompt else ""
            if ours != render_chat(tokenizer, shown, for_generation=prompt):
                raise ExportUnavailable(
                    "the training chat template does not render each message as "
                    "<prefix><role><separator><content><suffix>, so no Ollama TEMPLATE is "
                    "written for it: write the Modelfile's TEMPLATE by hand"
                )
    return (
        f"{{{{- range .Messages }}}}{before}{{{{ .Role }}}}{between}{{{{ .Content }}}}{after}"
        f"{{{{ end }}}}{before}assistant{between}"
    )


def ollama_modelfile(
    tokenizer: Any,
    system_prompt: str | None,
    repetition_penalty: float,
    context_length: int,
) -> str:
    """An Ollama Modelfile for `model.gguf` beside it: TEMPLATE rendering like training,
    SYSTEM, the stop tokens and greedy decoding as evaluation answers."""
    template = ollama_template(tokenizer)
    stops = [tokenizer.eos_token] + [
        token
        for token in tokenizer.all_special_tokens
        if token != tokenizer.eos_token and token in template
    ]
    lines = [f"FROM ./{GGUF_FILE}", f'TEMPLATE """{template}"""']
    if system_prompt:
        lines.append(f'SYSTEM """{system_prompt}"""')
    lines += [f'PARAMETER stop "{stop}"' for stop in dict.fromkeys(stops) if stop]
    lines += [
        "PARAMETER temperature 0",
        f"PARAMETER repeat_penalty {repetition_penalty}",
        f"PARAMETER num_ctx {context_length}",
    ]
    return "\n".join(lines) + "\n"


def write_gguf_export(
    model_dir: Path,
    output_dir: Path,
    export_format: str,
    f16_file: Path,
    system_prompt: str | None,
    repetition_penalty: float,
    default_pre: bool = False,
) -> None:
    """`output_dir`/model.gguf in `export_format`, its Modelfile, and the export marker.
    `f16_file` is the merged model converted once (made here when missing) and quantized from
    for every other format."""
    import shutil

    from transformers import AutoConfig, AutoTokenizer

    if not f16_file.is_file():
        convert_to_gguf(model_dir, f16_file, system_prompt, default_pre)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / GGUF_FILE
    file_type = GGUF_FORMATS[export_format]
    if file_type == "F16":
        shutil.copyfile(f16_file, target)
    else:
        quantize_gguf(f16_file, target, file_type)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.save_pretrained(output_dir)
    context = int(getattr(AutoConfig.from_pretrained(model_dir), "max_position_embeddings", 2048))
    (output_dir / MODELFILE).write_text(
        ollama_modelfile(tokenizer, system_prompt, repetition_penalty, context), encoding="utf-8"
    )
    (output_dir / EXPORT_MARKER).write_text(
        json.dumps({"format": export_format, "loader": "llama-cpp", "file": GGUF_FILE}, indent=2),
        encoding="utf-8",
    )


def tokenizer_with_gguf_template(tokenizer_dir: str | Path, export_dir: Path) -> Any:
    """The tokenizer saved in `tokenizer_dir` rendering with the chat template stored in the
    export's GGUF file: what to compare with the training tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.chat_template = gguf_metadata(export_dir / GGUF_FILE).get("tokenizer.chat_template")
    return tokenizer


def measure_gguf_export(
    export_dir: Path,
    label: str,
    conversations: list[list[dict[str, str]]],
    max_length: int,
    generation: GenerationConfig,
    score_answers: AnswerScorer,
    reference: Reference | None = None,
) -> ExportMeasurement:
    """`quantize.measure_export` for a GGUF export, through llama.cpp: the same answer-token
    perplexity and greedy golden answers, from the same token ids (the export's tokenizer)."""
    import time

    from transformers import AutoTokenizer

    from llm_assets.evaluation.generation import prompt_texts
    from llm_assets.evaluation.llama_cpp_engine import (
        gguf_generate_answers,
        gguf_perplexity,
        load_gguf,
        step_threads,
    )

    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    prompts = prompt_texts(tokenizer, conversations)
    longest = max(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in prompts)
    gguf_file = export_dir / GGUF_FILE
    started = time.perf_counter()
    threads = step_threads()
    llm = load_gguf(gguf_file, longest + generation.max_new_tokens, threads=threads)
    load_seconds = time.perf_counter() - started
    scorer = load_gguf(gguf_file, max_length, all_logits=True, threads=threads)
    score = gguf_perplexity(scorer, tokenizer, conversations, max_length).perplexity
    del scorer
    gguf_generate_answers(
        llm, tokenizer, prompts[:1], generation.model_copy(update={"max_new_tokens": 2})
    )
    answers = gguf_generate_answers(llm, tokenizer, prompts, generation, label=label)
    return export_measurement(
        label, export_dir, load_seconds, score, answers, conversations, score_answers, reference
    )


def llama_cpp_answerer(default_pre: bool = False) -> Answerer:
    """An evaluation `Answerer` on llama.cpp (evaluation.engine: llama-cpp): each model under
    test (its adapter merged into the base) converted to an f16 GGUF file in a temporary folder,
    answering through llama.cpp exactly as transformers decodes. Prompt-learning adapters (no
    weights to merge) answer on transformers."""
    from llm_assets.evaluation.generation import transformers_answers

    def answer(
        model: ModelUnderTest,
        tokenizer: Any,
        prompt_sets: Mapping[str, list[str]],
        config: GenerationConfig,
        scoring: ReferenceScoring | None = None,
        closed_book: Mapping[str, Sequence[str | None]] | None = None,
    ) -> dict[str, Generations]:
        import gc

        from llm_assets.evaluation.generation import load_model
        from llm_assets.evaluation.llama_cpp_engine import (
            gguf_generate_answers,
            load_gguf,
            step_threads,
        )

        if model.adapter_path and model.method in PROMPT_LEARNING_METHODS:
            return transformers_answers(model, tokenizer, prompt_sets, config, scoring, closed_book)
        twins = closed_book or {}
        with tempfile.TemporaryDirectory(prefix="gguf-eval-") as work:
            folder = Path(work) / "model"
            loaded = load_model(model)
            # Perplexity stays on transformers: scored on the load that is converted.
            scores = scoring.score(loaded, tokenizer) if scoring else {}
            loaded.save_pretrained(folder, safe_serialization=True)
            del loaded
            gc.collect()
            tokenizer.save_pretrained(folder)
            convert_to_gguf(folder, Path(work) / "f16.gguf", None, default_pre)
            longest = max(
                (
                    len(tokenizer(text, add_special_tokens=False)["input_ids"])
                    for prompts in prompt_sets.values()
                    for text in prompts
                ),
                default=1,
            )
            context, threads = longest + config.max_new_tokens, step_threads()
            llm = load_gguf(Path(work) / "f16.gguf", context, threads=threads)
            # Context-aware decoding reads the closed-book prompt on a context of its own.
            contrasted = config.context_contrast > 0 and any(any(texts) for texts in twins.values())
            closed_llm = (
                load_gguf(Path(work) / "f16.gguf", context, threads=threads) if contrasted else None
            )
            return {
                label: replace(
                    gguf_generate_answers(
                        llm, tokenizer, prompts, config, label, twins.get(label), closed_llm
                    ),
                    perplexity=scores,
                )
                for label, prompts in prompt_sets.items()
            }

    return answer
