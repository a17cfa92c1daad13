"""The `export:` section of a profile: the quantized copies of the merged model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llm_assets.config_base import StrictModel

ExportFormat = Literal[
    "bnb-nf4",
    "torchao-int8",
    "quanto-int8",
    "quanto-int4",
    "gptq-w4a16",
    "awq-w4a16",
    "gguf-f16",
    "gguf-q8_0",
    "gguf-q4_k_m",
]


class ExportConfig(StrictModel):
    """The merged model and its quantized copies; each copy is re-loaded and measured."""

    formats: list[ExportFormat] = Field(
        default_factory=lambda: list[ExportFormat](["bnb-nf4", "torchao-int8", "quanto-int4"]),
        description="bnb-nf4, torchao-int8, quanto-int8, quanto-int4 (CPU or GPU); gptq-w4a16, "
        "awq-w4a16 (llm-compressor, GPU only, for vLLM); gguf-f16, gguf-q8_0, gguf-q4_k_m "
        "(llama.cpp, with an Ollama Modelfile)",
    )
    measure_rows: int = Field(
        32, ge=1, description="golden conversations each export is scored and answers on"
    )
    calibration_rows: int = Field(
        128, ge=8, description="validation conversations that calibrate GPTQ/AWQ"
    )
    max_perplexity_increase: float = Field(
        0.10,
        ge=0,
        description="an export whose golden perplexity exceeds the merged model's by "
        "more than this share fails the export check",
    )
    max_rouge_l_drop: float = Field(
        0.05,
        ge=0,
        description="an export whose golden ROUGE-L is lower than the merged "
        "model's by more than this fails the export check",
    )
