"""The `serving:` and `guardrails:` sections of a profile: `llm-assets serve`, and the checks
around every answer (in evaluation as in serving)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llm_assets.config_base import StrictModel


class ScopeGuardConfig(StrictModel):
    """Questions whose closest `rag_index` chunk is less similar than the answered training
    questions are declined with `reply`, not answered (needs datasets.retrieval)."""

    enabled: bool = Field(False, description="decline questions the documentation does not cover")
    answered_share: float = Field(
        0.99,
        ge=0.5,
        le=1,
        description="share of the answered training questions the threshold lets through",
    )
    reply: str = Field(
        "I'm sorry, I can only help with questions about our product and your account with us.",
        min_length=1,
        description="the answer to a question out of scope",
    )


class GuardrailsConfig(StrictModel):
    """Checks around the model on every answer, in evaluation as in serving
    (llm_assets.serving.guardrails)."""

    scope: ScopeGuardConfig = Field(default_factory=ScopeGuardConfig)
    withhold_unseen_pii: bool = Field(
        True,
        description="replace PII in an answer that the prompt (system prompt, context, "
        "question) does not hold with [withheld]",
    )


class ServingConfig(StrictModel):
    """`llm-assets serve`: the OpenAI-compatible API and chat page over the champion, and the
    store of exchanges and feedback. Answers are decoded like evaluation.generation (greedy,
    its repetition_penalty) unless a request sets temperature, top_p or max_tokens."""

    engine: Literal["llama-cpp", "transformers", "vllm"] = Field(
        "llama-cpp",
        description="llama-cpp: the GGUF export (gguf_format) served by a llama_cpp.server "
        "process the gateway starts and stops (CPU); transformers: in this process, on CPU (or "
        "the GPU when there is one); vllm: on a GPU machine where the vllm package is installed",
    )
    gguf_format: Literal["gguf-f16", "gguf-q8_0", "gguf-q4_k_m"] = Field(
        "gguf-f16",
        description="which quantized_export GGUF file the llama-cpp engine serves (it must be in "
        "export.formats); gguf-f16 answers like the merged model, gguf-q4_k_m is smaller",
    )
    engine_threads: int | None = Field(
        None,
        ge=1,
        description="threads of the llama-cpp engine; default half the cores (llama.cpp's "
        "threads spin while they wait for each other, so one more thread than free cores "
        "slows generation many times over)",
    )
    max_concurrent_requests: int = Field(
        16,
        ge=1,
        description="chat completions generating or queued at once; more are refused with 503 "
        "and Retry-After",
    )
    host: str = Field("127.0.0.1", description="address listened on; 0.0.0.0: every interface")
    port: int = Field(8000, ge=1, le=65535)
    max_tokens: int = Field(
        256, ge=1, le=8192, description="longest answer; requests asking for more get this many"
    )
    default_max_tokens: int = Field(
        128, ge=1, description="longest answer when a request does not set max_tokens"
    )
    max_request_kb: int = Field(64, ge=1, description="larger request bodies are refused (413)")
    max_messages: int = Field(32, ge=1, description="most messages in one request")
    rag: bool = Field(
        False,
        description="prepend the rag_index chunks closest to the last user message as a "
        "system message (also: serve --rag)",
    )
    rag_k: int = Field(3, ge=1, le=20, description="chunks retrieved per request")
    rag_max_chars: int = Field(
        2000, ge=100, description="most characters of retrieved context; the rest is cut"
    )
    database_url_env: str = Field(
        "LLM_ASSETS_FEEDBACK_DB_URL",
        description="environment variable holding the SQLAlchemy URL of the exchange and "
        "feedback store, e.g. postgresql+psycopg://app:secret@db:5432/feedback; unset: SQLite "
        "at <state dir>/serving/feedback.db",
    )
    trace_experiment: str | None = Field(
        None,
        min_length=1,
        description="MLflow experiment every served exchange is traced into, with its feedback "
        "as assessments; unset: <registered model name>-serving",
    )

    @model_validator(mode="after")
    def _default_fits_the_cap(self) -> ServingConfig:
        if self.default_max_tokens > self.max_tokens:
            raise ValueError(
                f"default_max_tokens ({self.default_max_tokens}) is above max_tokens "
                f"({self.max_tokens}); lower it or raise max_tokens"
            )
        return self
