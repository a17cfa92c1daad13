"""The serving API under a small fuzzing run: schemathesis generates requests from the app's own
OpenAPI spec (valid and invalid bodies, odd headers, with and without the token); none may make
it fail with a server error, and none may pass without the token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from llm_assets.serving.app import create_app
from llm_assets.serving.engine import TransformersEngine
from llm_assets.serving.models import served_from_folder
from llm_assets.serving.store import ExchangeStore, Redactor, open_database
from llm_assets.settings import GenerationConfig, ServingConfig, TinyModelConfig

TOKEN = "fuzz-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from llm_assets.training.base_model import build_tiny_model, train_tokenizer

    folder = tmp_path_factory.mktemp("fuzz-model")
    tokenizer = train_tokenizer(["Restore deleted files from the trash."] * 30, vocab_size=300)
    config = TinyModelConfig(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
    )
    build_tiny_model(tokenizer, config, seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    served = served_from_folder(folder, name="tiny")
    database = Path(tmp_path_factory.mktemp("fuzz-store")) / "feedback.db"
    store = ExchangeStore(open_database(f"sqlite:///{database}"), Redactor(("EMAIL",)))
    settings_ = ServingConfig(max_tokens=4, default_max_tokens=4, max_request_kb=8)
    yield create_app(
        TransformersEngine.load(served.model), store, served, settings_, GenerationConfig(), TOKEN
    )


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(app: Any, examples: int, check: Any) -> int:
    """Run `check(case)` on `examples` generated cases of every operation; how many ran."""
    ran = 0
    for operation in _operations(app):

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            nonlocal ran
            ran += 1
            check(case)

        run()
    return ran


def test_no_generated_request_causes_a_server_error(app: Any) -> None:
    def check(case: Any) -> None:
        response = case.call(headers=AUTH)
        assert response.status_code < 500, (case.method, case.path, response.text[:300])

    operations = {(op.method.upper(), op.path) for op in _operations(app)}
    assert {("POST", "/v1/chat/completions"), ("POST", "/v1/feedback")} <= operations
    assert _fuzz(app, 15, check) >= 30


def test_no_generated_request_passes_without_the_token(app: Any) -> None:
    def check(case: Any) -> None:
        response = case.call(headers={"Authorization": "Bearer wrong-token-0123456789"})
        if case.path.startswith("/v1/"):
            # 413: a body over serving.max_request_kb is refused before anything reads it, token
            # or not (list-of-parts contents make the fuzzer's bodies larger).
            refused = (401, 413)
            assert response.status_code in refused, (case.method, case.path, response.status_code)

    assert _fuzz(app, 5, check) > 0
