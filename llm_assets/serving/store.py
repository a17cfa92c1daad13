"""Every exchange and every piece of feedback, PII-redacted, in SQL through SQLAlchemy.

Two tables, created on start when missing: `serving_exchanges` (one row per answer: the
conversation and the answer, redacted, with the model version, token counts, latency, the RAG
chunks used and the id of its MLflow trace) and `serving_feedback` (any number of rows per
answer: thumbs, a 1-5 rating, a comment and a corrected answer, redacted). SQLite under the
state folder by default; in production the URL comes from the environment variable
`serving.database_url_env` names (a Postgres URL), so the password stays out of the profile.
Times are stored as naive UTC.

`read_feedback` is what the quarterly `feedback_records` asset reads.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from llm_assets.settings import CleaningConfig, state_dir

metadata = sa.MetaData()

exchanges = sa.Table(
    "serving_exchanges",
    metadata,
    sa.Column("response_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("messages", sa.JSON, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False),
    sa.Column("completion_tokens", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("first_token_ms", sa.Float),
    sa.Column("finish_reason", sa.String(16), nullable=False),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("rag_chunk_ids", sa.JSON, nullable=False),
    sa.Column("pii_redacted", sa.JSON, nullable=False),
    # Added after the first release: open_database adds it to a store created without it.
    sa.Column("trace_id", sa.String(64)),
)

feedback = sa.Table(
    "serving_feedback",
    metadata,
    sa.Column("feedback_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "response_id",
        sa.String(64),
        sa.ForeignKey("serving_exchanges.response_id"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("thumbs", sa.String(4)),
    sa.Column("rating", sa.Integer),
    sa.Column("comment", sa.Text),
    sa.Column("corrected_answer", sa.Text),
    sa.Column("pii_redacted", sa.JSON, nullable=False),
)


def database_url(url_env: str, sqlite_path: Path | None = None) -> str:
    """The SQLAlchemy URL in the environment variable `url_env` (serving.database_url_env),
    else SQLite at `sqlite_path`, by default <state dir>/serving/feedback.db. The server writes
    and the `feedback_records` asset reads through this one function, so they meet."""
    url = os.environ.get(url_env, "").strip()
    if url:
        return url
    return f"sqlite:///{sqlite_path or state_dir() / 'serving' / 'feedback.db'}"


def open_database(url: str) -> sa.Engine:
    """An engine on `url` with both tables created when missing, and the columns added since
    a store was created added to it."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, pool_pre_ping=True)
    metadata.create_all(engine)
    _add_missing_columns(engine, exchanges)
    return engine


def _add_missing_columns(engine: sa.Engine, table: sa.Table) -> None:
    """ALTER TABLE … ADD COLUMN for each nullable column of `table` the database lacks: a store
    written by an older release opens and keeps its rows (the new column is NULL in them)."""
    present = {column["name"] for column in sa.inspect(engine).get_columns(table.name)}
    for column in table.columns:
        if column.name in present:
            continue
        quote = engine.dialect.identifier_preparer
        kind = column.type.compile(dialect=engine.dialect)
        add = (
            f"ALTER TABLE {quote.format_table(table)} ADD COLUMN {quote.quote(column.name)} {kind}"
        )
        try:
            with engine.begin() as connection:
                connection.execute(sa.text(add))
        except sa.exc.DBAPIError:
            # Another process opening the same store may have added it first.
            added = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
            if column.name not in added:
                raise


@dataclass(frozen=True)
class Redactor:
    """PII redaction as the cleaning chain does it: the same entities and allow list."""

    entities: tuple[str, ...]
    allow: tuple[str, ...] = ()

    @classmethod
    def from_cleaning(cls, cleaning: CleaningConfig) -> Redactor:
        return cls(tuple(cleaning.pii_entities), tuple(cleaning.pii_allow_list))

    def redact(self, texts: Sequence[str]) -> tuple[list[str], dict[str, int]]:
        """The texts with identifiers replaced by `<ENTITY>`, and how many of each were found."""
        from llm_assets.cleaning.pii import redact_pii_batch

        if not texts:
            return [], {}
        results = redact_pii_batch(list(texts), self.entities, allow=self.allow)
        found: Counter[str] = Counter()
        for _, counts in results:
            found.update(counts)
        return [text for text, _ in results], dict(sorted(found.items()))

    def warm_up(self) -> None:
        """Build the analyzer now, not in the first request (about two seconds)."""
        self.redact(["warm-up"])


@dataclass
class Exchange:
    """One answered request, as served (before redaction)."""

    response_id: str
    model: str
    model_version: str
    messages: list[dict[str, str]]
    answer: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    finish_reason: str
    stream: bool
    first_token_ms: float | None = None
    rag_chunk_ids: list[str] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: utc_now())
    trace_id: str | None = None  # its MLflow trace (llm_assets.serving.tracing), when traced


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _rounded(milliseconds: float | None) -> float | None:
    return None if milliseconds is None else round(milliseconds, 2)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class ExchangeStore:
    """Writes exchanges and feedback, redacted; what the app holds."""

    def __init__(self, engine: sa.Engine, redactor: Redactor) -> None:
        self.engine = engine
        self.redactor = redactor

    def record_exchange(self, exchange: Exchange) -> Exchange:
        """Stores `exchange` redacted; returns it as stored (conversation and answer redacted),
        which is what may leave this store, e.g. into its MLflow trace."""
        contents = [message["content"] for message in exchange.messages]
        redacted, found = self.redactor.redact([*contents, exchange.answer])
        messages = [
            {"role": message["role"], "content": text}
            for message, text in zip(exchange.messages, redacted[:-1], strict=True)
        ]
        with self.engine.begin() as connection:
            connection.execute(
                exchanges.insert().values(
                    response_id=exchange.response_id,
                    created_at=_naive_utc(exchange.created_at),
                    model=exchange.model,
                    model_version=exchange.model_version,
                    messages=messages,
                    answer=redacted[-1],
                    prompt_tokens=exchange.prompt_tokens,
                    completion_tokens=exchange.completion_tokens,
                    latency_ms=_rounded(exchange.latency_ms),
                    first_token_ms=_rounded(exchange.first_token_ms),
                    finish_reason=exchange.finish_reason,
                    stream=exchange.stream,
                    rag_chunk_ids=list(exchange.rag_chunk_ids),
                    pii_redacted=found,
                    trace_id=exchange.trace_id,
                )
            )
        return replace(exchange, messages=messages, answer=redacted[-1])

    def record_feedback(
        self,
        response_id: str,
        thumbs: str | None = None,
        rating: int | None = None,
        comment: str | None = None,
        corrected_answer: str | None = None,
        created_at: datetime | None = None,
    ) -> int | None:
        """The new feedback row's id, or None when no exchange has `response_id`."""
        texts = [text for text in (comment, corrected_answer) if text]
        redacted, found = self.redactor.redact(texts)
        by_text = iter(redacted)
        with self.engine.begin() as connection:
            known = connection.execute(
                sa.select(exchanges.c.response_id).where(exchanges.c.response_id == response_id)
            ).first()
            if known is None:
                return None
            inserted = connection.execute(
                feedback.insert()
                .returning(feedback.c.feedback_id)
                .values(
                    response_id=response_id,
                    created_at=_naive_utc(created_at or utc_now()),
                    thumbs=thumbs,
                    rating=rating,
                    comment=next(by_text) if comment else None,
                    corrected_answer=next(by_text) if corrected_answer else None,
                    pii_redacted=found,
                )
            )
            return int(inserted.scalar_one())

    def traced_feedback(self, feedback_id: int) -> dict[str, Any] | None:
        """Feedback row `feedback_id` as stored (redacted) with its exchange's `trace_id`
        (None when that exchange was not traced): feedback_id, response_id, trace_id, thumbs,
        rating, comment, corrected_answer. None when there is no such row."""
        query = (
            sa.select(
                feedback.c.feedback_id,
                feedback.c.response_id,
                exchanges.c.trace_id,
                feedback.c.thumbs,
                feedback.c.rating,
                feedback.c.comment,
                feedback.c.corrected_answer,
            )
            .join(exchanges, feedback.c.response_id == exchanges.c.response_id)
            .where(feedback.c.feedback_id == feedback_id)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else dict(row._mapping)


def read_feedback(engine: sa.Engine, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Feedback given in [start, end), oldest first, each row joined with the exchange it
    judges: feedback_id, response_id, feedback_at, thumbs, rating, comment, corrected_answer,
    answered_at, model, model_version, messages (the conversation, ending with the user's
    question), answer, rag_chunk_ids. Times are timezone-aware UTC; naive bounds are read as
    UTC. Everything is already PII-redacted."""
    query = (
        sa.select(
            feedback.c.feedback_id,
            feedback.c.response_id,
            feedback.c.created_at.label("feedback_at"),
            feedback.c.thumbs,
            feedback.c.rating,
            feedback.c.comment,
            feedback.c.corrected_answer,
            exchanges.c.created_at.label("answered_at"),
            exchanges.c.model,
            exchanges.c.model_version,
            exchanges.c.messages,
            exchanges.c.answer,
            exchanges.c.rag_chunk_ids,
        )
        .join(exchanges, feedback.c.response_id == exchanges.c.response_id)
        .where(feedback.c.created_at >= _naive_utc(start))
        .where(feedback.c.created_at < _naive_utc(end))
        .order_by(feedback.c.created_at, feedback.c.feedback_id)
    )
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    for row in rows:
        row["feedback_at"] = row["feedback_at"].replace(tzinfo=UTC)
        row["answered_at"] = row["answered_at"].replace(tzinfo=UTC)
    return rows
