from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from llm_assets.serving.store import (
    ExchangeStore,
    Redactor,
    database_url,
    exchanges,
    open_database,
    read_feedback,
)
from llm_assets.settings import ALL_PII_ENTITIES, ServingConfig

from .conftest import served_exchange

QUARTER_START = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> ExchangeStore:
    redactor = Redactor(tuple(ALL_PII_ENTITIES), allow=("Aurora",))
    return ExchangeStore(open_database(f"sqlite:///{tmp_path / 'feedback.db'}"), redactor)


def test_stored_exchange_is_redacted_and_keeps_what_was_served(store: ExchangeStore) -> None:
    store.record_exchange(
        served_exchange(
            "chatcmpl-1",
            "I'm Jane Miller, jane.miller@example.com, my Aurora sync fails",
            "Call us at +1 415 555 0132 and quote card 4111 1111 1111 1111.",
            rag_chunk_ids=["docs/sync#2"],
            first_token_ms=9.5,
        )
    )

    with store.engine.connect() as connection:
        row = connection.execute(sa.select(exchanges)).mappings().one()
    assert row["messages"] == [
        {"role": "user", "content": "I'm <PERSON>, <EMAIL>, my Aurora sync fails"}
    ]
    assert row["answer"] == "Call us at <PHONE> and quote card <CREDIT_CARD>."
    assert row["pii_redacted"] == {"CREDIT_CARD": 1, "EMAIL": 1, "PERSON": 1, "PHONE": 1}
    assert (row["model_version"], row["prompt_tokens"], row["completion_tokens"]) == ("3", 12, 8)
    assert (row["latency_ms"], row["first_token_ms"]) == (41.23, 9.5)
    assert row["rag_chunk_ids"] == ["docs/sync#2"]


def test_feedback_is_redacted_and_needs_a_known_answer(store: ExchangeStore) -> None:
    store.record_exchange(
        served_exchange("chatcmpl-1", "How do I restore a file?", "Open the trash.")
    )

    unknown = store.record_feedback("chatcmpl-404", thumbs="up")
    first = store.record_feedback(
        "chatcmpl-1",
        thumbs="down",
        rating=2,
        comment="Ask bob.smith@example.com",
        corrected_answer="Open Settings > Trash, or call +44 20 7946 0958.",
        created_at=QUARTER_START,
    )

    assert unknown is None
    assert first is not None
    [row] = read_feedback(store.engine, QUARTER_START, QUARTER_START + timedelta(days=1))
    assert row["comment"] == "Ask <EMAIL>"
    assert row["corrected_answer"] == "Open Settings > Trash, or call <PHONE>."
    assert (row["feedback_id"], row["thumbs"], row["rating"]) == (first, "down", 2)


def test_read_feedback_joins_exchanges_within_the_time_range(store: ExchangeStore) -> None:
    answered = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
    store.record_exchange(served_exchange("a", "Q1", "A1", created_at=answered))
    store.record_exchange(served_exchange("b", "Q2", "A2", created_at=answered))
    end = datetime(2026, 7, 1, tzinfo=UTC)
    store.record_feedback("a", thumbs="up", created_at=QUARTER_START - timedelta(seconds=1))
    store.record_feedback("a", rating=5, created_at=QUARTER_START)  # the range's first instant
    store.record_feedback("b", corrected_answer="A2, fixed", created_at=end - timedelta(hours=1))
    store.record_feedback("b", thumbs="down", created_at=end)  # the next quarter's

    rows = read_feedback(store.engine, QUARTER_START, end)

    assert [(row["response_id"], row["rating"], row["corrected_answer"]) for row in rows] == [
        ("a", 5, None),
        ("b", None, "A2, fixed"),
    ]
    assert rows[0]["feedback_at"] == QUARTER_START
    assert rows[0]["answered_at"] == answered
    assert rows[0]["messages"] == [{"role": "user", "content": "Q1"}]
    assert (rows[0]["answer"], rows[0]["model_version"], rows[0]["rag_chunk_ids"]) == (
        "A1",
        "3",
        [],
    )
    # Naive bounds are UTC.
    assert len(read_feedback(store.engine, QUARTER_START.replace(tzinfo=None), end)) == 2


def test_database_url_comes_from_the_named_variable_else_sqlite_in_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_ASSETS_STATE_DIR", str(tmp_path))
    config = ServingConfig(database_url_env="ACME_FEEDBACK_DB")
    monkeypatch.delenv("ACME_FEEDBACK_DB", raising=False)

    default = f"sqlite:///{tmp_path / 'serving' / 'feedback.db'}"
    assert database_url(config.database_url_env) == default
    monkeypatch.setenv("ACME_FEEDBACK_DB", "postgresql+psycopg://app:pw@db:5432/feedback")
    assert database_url(config.database_url_env) == "postgresql+psycopg://app:pw@db:5432/feedback"
