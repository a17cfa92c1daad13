"""`serving.engine: llama-cpp`: a GGUF export served by llama-cpp-python's OpenAI server, in a
process of its own that the gateway starts, health-checks and stops.

The gateway keeps everything but generation: auth, the system prompt, retrieval, limits and the
feedback store. It renders the conversation with the training tokenizer (the one saved beside
the GGUF file) and sends the text to the engine's `/v1/completions`, streamed or not; the
engine listens on loopback only, behind a random key the gateway holds. The engine generates
one request at a time; it is started with `--interrupt_requests False`, without which a new
request silently cuts off a running stream.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llm_assets.serving.engine import (
    Completion,
    EngineUnavailable,
    Prompt,
    TextStream,
    render_prompt,
)
from llm_assets.serving.protocol import Sampling

# A queued request waits for every request ahead of it: reads may take minutes.
_READ_TIMEOUT_SECONDS = 600.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


class LlamaCppServerEngine:
    """A ChatEngine whose generation runs in a llama_cpp.server process."""

    def __init__(
        self,
        process: subprocess.Popen[bytes] | None,
        base_url: str,
        api_key: str,
        tokenizer: Any,
        context_length: int,
    ) -> None:
        import httpx

        self.process = process
        self.base_url = base_url
        self.api_key = api_key
        self.tokenizer = tokenizer
        self.context_length = context_length
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(10.0, read=_READ_TIMEOUT_SECONDS),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )
        eos = tokenizer.eos_token
        self._stop = [eos] if eos else []
        # A Rust tokenizer must not be called from two request threads at once.
        self._tokenizer_lock = threading.Lock()

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
        from llm_assets.export.gguf import GGUF_FILE, gguf_metadata

        gguf_file = export_dir / GGUF_FILE
        if not gguf_file.is_file():
            raise EngineUnavailable(
                f"serving.engine is llama-cpp, but {export_dir} holds no {GGUF_FILE}: serve a "
                "GGUF export (export.formats: gguf-f16 or gguf-q4_k_m, materialize "
                "quantized_export), or set serving.engine: transformers"
            )
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError as error:
            raise EngineUnavailable(
                f"llama-cpp-python's server cannot be imported ({error}); `make setup` installs "
                "llama-cpp-python[server]"
            ) from error
        tokenizer = load_chat_tokenizer(str(export_dir))
        metadata = gguf_metadata(gguf_file)
        architecture = metadata.get("general.architecture", "llama")
        trained = int(metadata.get(f"{architecture}.context_length", 2048))
        context = min(context_length or trained, trained)
        port, api_key = free_port(), secrets.token_hex(16)
        # Half the cores by default, as llama.cpp does: its threads spin while waiting for each
        # other, so a core taken by other work (the gateway, another process) stalls them all.
        threads = threads or max(1, (os.cpu_count() or 2) // 2)
        command = engine_command(gguf_file, port, context, threads, api_key)
        log = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        engine = cls(process, f"http://127.0.0.1:{port}", api_key, tokenizer, context)
        try:
            engine.wait_until_ready(startup_timeout)
        except BaseException:
            engine.close()
            raise
        return engine

    def wait_until_ready(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EngineUnavailable(
                    f"the llama.cpp engine exited with status {self.process.returncode} while "
                    "starting; run its command by hand to see why: "
                    + " ".join(self.process.args if isinstance(self.process.args, list) else [])
                )
            try:
                if self._client.get("/v1/models", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise EngineUnavailable(f"the llama.cpp engine did not answer within {timeout:.0f} s")

    def healthy(self) -> bool:
        return self.process is None or self.process.poll() is None

    def close(self) -> None:
        """Stop the engine process (and wait for it); safe to call twice."""
        self._client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def prepare(self, messages: list[dict[str, str]]) -> Prompt:
        with self._tokenizer_lock:
            return render_prompt(self.tokenizer, messages)

    def _body(self, prompt: Prompt, sampling: Sampling, stream: bool) -> dict[str, Any]:
        return {
            "prompt": prompt.text,
            "max_tokens": sampling.max_tokens,
            # llama.cpp decodes greedily at temperature 0.
            "temperature": 0.0 if sampling.greedy else sampling.temperature,
            "top_p": sampling.top_p,
            "repeat_penalty": sampling.repetition_penalty,
            "stop": self._stop,
            "stream": stream,
        }

    def complete(self, prompt: Prompt, sampling: Sampling) -> Completion:
        response = self._client.post("/v1/completions", json=self._body(prompt, sampling, False))
        _raise_for_engine(response)
        body = response.json()
        choice, usage = body["choices"][0], body.get("usage") or {}
        return Completion(
            text=str(choice["text"]).strip(),
            prompt_tokens=int(usage.get("prompt_tokens", len(prompt.token_ids))),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
        )

    def stream(self, prompt: Prompt, sampling: Sampling) -> TextStream:
        text_stream = TextStream(iter(()))
        body = self._body(prompt, sampling, True)

        def pieces() -> Iterator[str]:
            parts: list[str] = []
            finish = "stop"
            with self._client.stream("POST", "/v1/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    _raise_for_engine(response)
                for line in response.iter_lines():
                    # The engine may hold the connection open after [DONE]: stop reading there.
                    if line == "data: [DONE]":
                        break
                    if not line.startswith("data: "):
                        continue
                    choice = json.loads(line[len("data: ") :])["choices"][0]
                    piece = choice.get("text") or ""
                    if choice.get("finish_reason"):
                        finish = "length" if choice["finish_reason"] == "length" else "stop"
                    # The first piece keeps no leading space, as a whole answer is stripped.
                    piece = piece if parts else piece.lstrip()
                    if piece:
                        parts.append(piece)
                        yield piece
            text = "".join(parts).strip()
            # The stream carries no usage: the answer's tokens are counted with the tokenizer.
            with self._tokenizer_lock:
                counted = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            text_stream.completion = Completion(text, len(prompt.token_ids), counted, finish)

        text_stream.pieces = pieces()
        return text_stream


def _raise_for_engine(response: Any) -> None:
    if response.status_code != 200:
        raise EngineUnavailable(
            f"the llama.cpp engine answered {response.status_code}: {response.text[:500]}"
        )
