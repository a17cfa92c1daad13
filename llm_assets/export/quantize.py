"""Merging an adapter into its base and writing quantized copies that are re-loaded and measured.

A quantized model that answers worse must show it: every export is loaded back from disk and
scored against the merged model on the same conversations.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llm_assets.evaluation.perplexity import perplexity


@dataclass(frozen=True)
class ExportMeasurement:
    format: str
    path: str
    size_bytes: int
    load_seconds: float
    perplexity: float
    perplexity_delta: float

    def as_row(self) -> dict[str, object]:
        return asdict(self)


def folder_size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def merge_adapter(base_model_path: str, adapter_path: str, output_dir: Path) -> None:
    """Base weights (full precision) plus the LoRA deltas, saved as one safetensors model with the
    adapter's tokenizer and chat template."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_model_path, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_path).merge_and_unload()
    merged.save_pretrained(output_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(adapter_path).save_pretrained(output_dir)


def quantize_bnb_nf4(model_dir: Path, output_dir: Path) -> None:
    """bitsandbytes NF4 with double quantization, serialized in 4-bit."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    gpu = torch.cuda.is_available()
    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if gpu else torch.float32,
    )
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, quantization_config=config, device_map={"": 0 if gpu else "cpu"}
    )
    model.save_pretrained(output_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(output_dir)


QUANTIZERS = {"bnb-nf4": quantize_bnb_nf4}


def measure_model(
    model_dir: Path,
    conversations: list[list[dict[str, str]]],
    max_length: int,
    reference_perplexity: float | None,
    label: str,
) -> ExportMeasurement:
    """Load `model_dir` as a user would and score it on `conversations`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    device_map: dict[str, Any] = {"": 0 if torch.cuda.is_available() else "cpu"}
    model = AutoModelForCausalLM.from_pretrained(model_dir, device_map=device_map)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    load_seconds = time.perf_counter() - started
    score = perplexity(model, tokenizer, conversations, max_length).perplexity
    return ExportMeasurement(
        format=label,
        path=str(model_dir),
        size_bytes=folder_size(model_dir),
        load_seconds=round(load_seconds, 3),
        perplexity=score,
        perplexity_delta=score - reference_perplexity if reference_perplexity is not None else 0.0,
    )
