"""An engine in a process of its own behind the gateway: llama.cpp's server (the CPU default)
or vLLM's OpenAI server (on a GPU). The gateway starts it on loopback behind a random key,
waits until it answers, proxies `/v1/completions` (streamed or not) and stops it.

The gateway keeps everything but generation: auth, the system prompt, retrieval, limits and the
feedback store. It renders the conversation with the training tokenizer, so the engine never
applies a chat template of its own: the model is asked exactly as it was trained.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

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


class EngineProcess:
    """A ChatEngine whose generation runs in an OpenAI-compatible server process. Subclasses
    say how to start it (`start`), where it reports ready (`ready_path`) and what a completion
    request holds (`request_body`)."""

    name = "engine"
    ready_path = "/v1/models"

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
        # A Rust tokenizer must not be called from two request threads at once.
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def launch(
        cls,
        command: list[str],
        port: int,
        api_key: str,
        tokenizer: Any,
        context_length: int,
        startup_timeout: float,
        log_file: Path | None,
    ) -> Self:
        """Run `command` (an engine listening on `port`) and wait until it answers."""
        log = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        engine = cls(process, f"http://127.0.0.1:{port}", api_key, tokenizer, context_length)
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
                    f"the {self.name} engine exited with status {self.process.returncode} while "
                    "starting; run its command by hand to see why: "
                    + " ".join(self.process.args if isinstance(self.process.args, list) else [])
                )
            try:
                if self._client.get(self.ready_path, timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise EngineUnavailable(f"the {self.name} engine did not answer within {timeout:.0f} s")

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

    def request_body(self, prompt: Prompt, sampling: Sampling, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def complete(self, prompt: Prompt, sampling: Sampling) -> Completion:
        body = self.request_body(prompt, sampling, False)
        response = self._client.post("/v1/completions", json=body)
        self._raise_for_engine(response)
        answer = response.json()
        choice, usage = answer["choices"][0], answer.get("usage") or {}
        return Completion(
            text=str(choice["text"]).strip(),
            prompt_tokens=int(usage.get("prompt_tokens", len(prompt.token_ids))),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
        )

    def stream(self, prompt: Prompt, sampling: Sampling) -> TextStream:
        text_stream = TextStream(iter(()))
        body = self.request_body(prompt, sampling, True)

        def pieces() -> Iterator[str]:
            parts: list[str] = []
            finish = "stop"
            with self._client.stream("POST", "/v1/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    self._raise_for_engine(response)
                for line in response.iter_lines():
                    # The engine may hold the connection open after [DONE]: stop reading there.
                    if line == "data: [DONE]":
                        break
                    if not line.startswith("data: "):
                        continue
                    choices = json.loads(line[len("data: ") :]).get("choices") or []
                    if not choices:  # a closing usage chunk
                        continue
                    choice = choices[0]
                    piece = choice.get("text") or ""
                    if choice.get("finish_reason"):
                        finish = "length" if choice["finish_reason"] == "length" else "stop"
                    # The first piece keeps no leading space, as a whole answer is stripped.
                    piece = piece if parts else piece.lstrip()
                    if piece:
                        parts.append(piece)
                        yield piece
            text = "".join(parts).strip()
            # Counted with the tokenizer: not every engine reports usage on a stream.
            with self._tokenizer_lock:
                counted = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            text_stream.completion = Completion(text, len(prompt.token_ids), counted, finish)

        text_stream.pieces = pieces()
        return text_stream

    def _raise_for_engine(self, response: Any) -> None:
        if response.status_code != 200:
            raise EngineUnavailable(
                f"the {self.name} engine answered {response.status_code}: {response.text[:500]}"
            )
