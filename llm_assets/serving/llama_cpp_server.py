"""`serving.engine: llama-cpp`: a GGUF export served by llama-cpp-python's OpenAI server, in a
process of its own that the gateway starts, health-checks and stops (`engine_process`).

The engine generates one request at a time; it is started with `--interrupt_requests False`,
without which a new request silently cuts off a running stream.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

from llm_assets.serving.engine import EngineUnavailable, Prompt
from llm_assets.serving.engine_process import EngineProcess, free_port
from llm_assets.serving.protocol import Sampling

__all__ = ["LlamaCppServerEngine", "engine_command", "free_port", "served_gguf"]


def served_gguf(export_dir: Path, context_length: int | None = None) -> tuple[Path, int]:
    """The GGUF file of an export folder and the context to serve it with: `context_length`,
    at most what the model was trained for (all of it when None)."""
    from llm_assets.export.gguf import GGUF_FILE, gguf_metadata

    gguf_file = export_dir / GGUF_FILE
    if not gguf_file.is_file():
        raise EngineUnavailable(
            f"serving.engine is llama-cpp, but {export_dir} holds no {GGUF_FILE}: serve a "
            "GGUF export (export.formats: gguf-f16 or gguf-q4_k_m, materialize "
            "quantized_export), or set serving.engine: transformers"
        )
    metadata = gguf_metadata(gguf_file)
    architecture = metadata.get("general.architecture", "llama")
    trained = int(metadata.get(f"{architecture}.context_length", 2048))
    return gguf_file, min(context_length or trained, trained)


def engine_command(
    gguf_file: Path, port: int, context_length: int, threads: int, api_key: str
) -> list[str]:
    """The llama_cpp.server command line: loopback, one model, `threads`, no interrupts."""
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf_file),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(context_length),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--interrupt_requests",
        "False",
        # The repetition penalty covers every token of the answer (the sampler never sees the
        # prompt's), as evaluation's engines do; the default window is the last 64 only.
        "--last_n_tokens_size",
        str(context_length),
        "--api_key",
        api_key,
    ]


class LlamaCppServerEngine(EngineProcess):
    """A ChatEngine whose generation runs in a llama_cpp.server process."""

    name = "llama.cpp"

    @classmethod
    def start(
        cls,
        export_dir: Path,
        context_length: int | None = None,
        threads: int | None = None,
        startup_timeout: float = 180.0,
        log_file: Path | None = None,
    ) -> LlamaCppServerEngine:
        """Start the engine on `export_dir`/model.gguf and wait until it answers."""
        from llm_assets.datasets.chat_template import load_chat_tokenizer

        gguf_file, context = served_gguf(export_dir, context_length)
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError as error:
            raise EngineUnavailable(
                f"llama-cpp-python's server cannot be imported ({error}); `make setup` installs "
                "llama-cpp-python[server]"
            ) from error
        tokenizer = load_chat_tokenizer(str(export_dir))
        port, api_key = free_port(), secrets.token_hex(16)
        # Half the cores by default, as llama.cpp does: its threads spin while waiting for each
        # other, so a core taken by other work (the gateway, another process) stalls them all.
        threads = threads or max(1, (os.cpu_count() or 2) // 2)
        command = engine_command(gguf_file, port, context, threads, api_key)
        return cls.launch(command, port, api_key, tokenizer, context, startup_timeout, log_file)

    def request_body(self, prompt: Prompt, sampling: Sampling, stream: bool) -> dict[str, Any]:
        return {
            "prompt": prompt.text,
            "max_tokens": sampling.max_tokens,
            # llama.cpp decodes greedily at temperature 0.
            "temperature": 0.0 if sampling.greedy else sampling.temperature,
            "top_p": sampling.top_p,
            "repeat_penalty": sampling.repetition_penalty,
            "stop": [self.tokenizer.eos_token] if self.tokenizer.eos_token else [],
            "stream": stream,
        }
