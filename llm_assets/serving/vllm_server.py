"""`serving.engine: vllm` on a GPU machine: vLLM's own OpenAI server in a process the gateway
starts, health-checks and stops (`engine_process`), with continuous batching and paged attention
instead of one request at a time.

A LoRA adapter is served as vLLM serves adapters (`--enable-lora --lora-modules name=path`):
the base model is loaded once and each request names the adapter, so the champion and a
challenger trained from the same base can share one engine (`adapters`). A full fine-tune is
served as the model itself. Prompts are rendered and tokenized by the gateway with the training
tokenizer and sent as token ids, so vLLM never applies a template or tokenizes on its own.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llm_assets.evaluation.generation import ModelUnderTest
from llm_assets.serving.engine import EngineUnavailable, Prompt
from llm_assets.serving.engine_process import EngineProcess, free_port
from llm_assets.serving.protocol import Sampling
from llm_assets.training.config import PROMPT_LEARNING_METHODS

# The name the base model (or a full fine-tune) answers under; adapters answer under their own.
BASE_MODEL_NAME = "base"
SERVED_ADAPTER_NAME = "served"
# The LoRA ranks vLLM compiles kernels for: an adapter's rank is rounded up to one of them.
_VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def lora_rank(adapter_path: str | Path) -> int:
    """The rank in an adapter folder's adapter_config.json."""
    config = Path(adapter_path) / "adapter_config.json"
    try:
        return int(json.loads(config.read_text(encoding="utf-8"))["r"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise EngineUnavailable(f"{config}: no LoRA rank can be read ({error})") from error


def vllm_command(
    model: ModelUnderTest,
    port: int,
    api_key: str,
    adapters: Mapping[str, str] | None = None,
    context_length: int | None = None,
) -> list[str]:
    """The `vllm serve` command line (as `python -m vllm.entrypoints.openai.api_server`, the
    same server): loopback only, behind `api_key`; `model`'s base with the LoRA `adapters`
    (name -> folder; default: its own adapter as "served"), or a full fine-tune as the model."""
    if model.adapter_path and model.method in PROMPT_LEARNING_METHODS:
        raise EngineUnavailable(
            f"vLLM serves LoRA adapters and full models, not {model.method} adapters; set "
            "serving.engine: transformers for this model"
        )
    full = bool(model.adapter_path) and model.method == "full"
    weights = str(model.adapter_path) if full else model.base_model_path
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        weights,
        # The adapter folder holds the training tokenizer; it decodes the answers.
        "--tokenizer",
        str(model.adapter_path or model.base_model_path),
        "--served-model-name",
        BASE_MODEL_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api-key",
        api_key,
    ]
    if context_length:
        command += ["--max-model-len", str(context_length)]
    if model.adapter_path and not full:
        adapters = adapters or {SERVED_ADAPTER_NAME: str(model.adapter_path)}
        rank = max(lora_rank(path) for path in adapters.values())
        command += [
            "--enable-lora",
            "--max-lora-rank",
            str(next((r for r in _VLLM_LORA_RANKS if r >= rank), rank)),
            "--max-loras",
            str(len(adapters)),
            "--lora-modules",
            *(f"{name}={path}" for name, path in adapters.items()),
        ]
    return command


class VllmServerEngine(EngineProcess):
    """A ChatEngine whose generation runs in vLLM's OpenAI server process."""

    name = "vLLM"
    ready_path = "/health"
    # What requests name: the adapter as `vllm_command` registered it, or the base model.
    served_name = BASE_MODEL_NAME

    @classmethod
    def start(
        cls,
        model: ModelUnderTest,
        repetition_penalty: float,
        context_length: int | None = None,
        startup_timeout: float = 900.0,
        log_file: Path | None = None,
    ) -> VllmServerEngine:
        """Start vLLM's server on `model` and wait until it answers. Refused when the profile
        decodes with a repetition penalty: vLLM's also penalizes the prompt's tokens (the
        retrieved context among them), so its answers would differ from the evaluated ones."""
        import importlib.util

        from llm_assets.serving.engine import tokenizer_for

        if repetition_penalty != 1.0:
            raise EngineUnavailable(
                f"evaluation.generation.repetition_penalty is {repetition_penalty}, which the "
                "evaluated engines apply to the answer's tokens only; vLLM's server applies it to "
                "the prompt's too (the retrieved context among them), so served answers would "
                "differ from evaluated ones. Set it to 1.0 in the profile and evaluate again, "
                "or serve with serving.engine: llama-cpp or transformers"
            )
        if importlib.util.find_spec("vllm") is None:
            raise EngineUnavailable(
                "serving.engine is vllm, but vllm is not installed here. vLLM needs a CUDA GPU: "
                "install it on the GPU machine (pip install vllm) or set serving.engine: "
                "llama-cpp (CPU) or transformers in the profile"
            )
        tokenizer = tokenizer_for(model)
        port, api_key = free_port(), secrets.token_hex(16)
        command = vllm_command(model, port, api_key, context_length=context_length)
        served = SERVED_ADAPTER_NAME if "--enable-lora" in command else BASE_MODEL_NAME
        engine = cls.launch(
            command, port, api_key, tokenizer, context_length or 0, startup_timeout, log_file
        )
        engine.served_name = served
        if not context_length:
            engine.context_length = engine.served_context_length()
        return engine

    def served_context_length(self) -> int:
        """The longest sequence the running server accepts (`max_model_len` of /v1/models)."""
        listed = self._client.get("/v1/models").json().get("data") or []
        lengths = [int(entry.get("max_model_len") or 0) for entry in listed]
        return max(lengths, default=0) or 2048

    def request_body(self, prompt: Prompt, sampling: Sampling, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.served_name,
            # Token ids, as the gateway tokenized them: vLLM does not tokenize again.
            "prompt": list(prompt.token_ids),
            "max_tokens": sampling.max_tokens,
            "temperature": 0.0 if sampling.greedy else sampling.temperature,
            "top_p": sampling.top_p,
            "stop_token_ids": [eos] if (eos := self.tokenizer.eos_token_id) is not None else [],
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body


def refuse_context_contrast(alpha: float) -> None:
    """Raise EngineUnavailable: answers with retrieved context are decoded context-aware
    (`alpha` > 0), which needs every step's logits, and vLLM's server returns none."""
    raise EngineUnavailable(
        f"evaluation.generation.context_contrast is {alpha}: context-aware decoding needs "
        "every step's logits, which vLLM's server does not return; serve with serving.engine "
        "llama-cpp or transformers, or set context_contrast: 0 (and evaluate again, so that "
        "what is served is what was evaluated)"
    )
