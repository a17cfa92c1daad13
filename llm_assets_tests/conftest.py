"""Shared fixtures: the test profile, a machine with the network cut, a materialized graph."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import llm_assets  # noqa: F401  (sets the offline environment before other imports)

TESTS_DIR = Path(__file__).parent
PROJECT_ROOT = TESTS_DIR.parent
TINY_PROFILE = TESTS_DIR / "profiles" / "tiny.yaml"


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
