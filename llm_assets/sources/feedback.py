"""Served exchanges and their feedback, curated into training records for the next quarter.

A reviewer's corrected answer is the best training signal there is, so it always wins; an answer
users liked is kept as it was; everything else is dropped with a reason, never silently. The
records keep the whole conversation (`fields.messages`), so they become multi-turn SFT pairs the
same way chat sources do, after passing the cleaning chain like any other source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from llm_assets.contracts import Markdown
from llm_assets.sources.records import RawRecord, records_to_frame
from llm_assets.stage_output import StageOutput
from llm_assets.storage import frame_digest

FEEDBACK_SOURCE = "feedback"
# Raw records carry a reader's verdict in `read_error`; this prefix marks a curation decision,
# which the cleaning ledger books as `dropped` rather than `quarantined` (nothing is broken).
CURATION_PREFIX = "feedback."


@dataclass(frozen=True)
class Exchange:
    """One served answer and the latest feedback on it (None fields: not given)."""

    response_id: str
    created_at: str
    model_version: str
    messages: list[dict[str, str]]
    answer: str
    thumbs: str | None = None  # "up" or "down"
    rating: int | None = None  # 1..5
    comment: str | None = None
    corrected_answer: str | None = None

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> Exchange:
        rating = row.get("rating")
        return cls(
            response_id=str(row["response_id"]),
            created_at=str(row["created_at"]),
            model_version=str(row.get("model_version") or ""),
            messages=[
                {"role": str(m["role"]), "content": str(m["content"])} for m in row["messages"]
            ],
            answer=str(row.get("answer") or ""),
            thumbs=row.get("thumbs") or None,
            rating=int(rating) if rating is not None else None,
            comment=row.get("comment") or None,
            corrected_answer=(row.get("corrected_answer") or "").strip() or None,
        )


def curation_verdict(exchange: Exchange, min_rating: int) -> tuple[str, str]:
    """(kind, reason): kind is `correction` or `liked` for a kept exchange, else `dropped`, with
    the `feedback.*` reason the ledger will show."""
    if exchange.corrected_answer:
        return "correction", "a reviewer corrected the answer"
    liked = exchange.thumbs == "up" or (
        exchange.rating is not None and exchange.rating >= min_rating
    )
    disliked = exchange.thumbs == "down" or (exchange.rating is not None and exchange.rating <= 2)
    if liked and disliked:
        return "dropped", "feedback.conflicting"
    if liked:
        return "liked", "users liked the answer"
    if disliked:
        return "dropped", "feedback.disliked"
    if exchange.rating is not None:
        return "dropped", "feedback.neutral"
    return "dropped", "feedback.no_feedback"


def curate_feedback(
    exchanges: Iterable[Exchange], min_rating: int, quarter: str
) -> list[RawRecord]:
    """One raw record per exchange judged in `quarter`: corrected and liked ones as chat records
    whose last answer is the corrected (or the liked) one, the rest marked with a `feedback.*`
    reason and detail. An answer judged again in a later quarter is a new record of that
    quarter (its id carries the quarter); dedup keeps one of two identical pairs."""
    records = []
    for exchange in exchanges:
        kind, reason = curation_verdict(exchange, min_rating)
        uri = f"feedback://{exchange.response_id}"
        record_id = f"{FEEDBACK_SOURCE}:{exchange.response_id}@{quarter}"
        provenance = {
            "response_id": exchange.response_id,
            "model_version": exchange.model_version,
            "created_at": exchange.created_at,
            "rating": exchange.rating,
            "thumbs": exchange.thumbs,
        }
        if kind == "dropped":
            records.append(
                RawRecord(
                    record_id=record_id,
                    source=FEEDBACK_SOURCE,
                    uri=uri,
                    fields=provenance,
                    read_error=reason,
                    error_detail=f"{uri}: {_why_dropped(reason, exchange)}",
                )
            )
            continue
        answer = exchange.corrected_answer if kind == "correction" else exchange.answer
        turns = [m for m in exchange.messages if m["content"].strip()]
        records.append(
            RawRecord(
                record_id=record_id,
                source=FEEDBACK_SOURCE,
                uri=uri,
                text="\n".join(f"{m['role']}: {m['content'].strip()}" for m in turns),
                response=answer,
                fields={
                    **provenance,
                    "messages": [*turns, {"role": "assistant", "content": answer}],
                    "task": f"feedback_{kind}",
                },
            )
        )
    return records


def _why_dropped(reason: str, exchange: Exchange) -> str:
    given = f"thumbs {exchange.thumbs or 'none'}, rating {exchange.rating or 'none'}"
    return {
        "feedback.conflicting": f"thumbs and rating disagree ({given})",
        "feedback.disliked": f"users disliked the answer and gave no correction ({given})",
        "feedback.neutral": f"a middling rating and no correction ({given})",
        "feedback.no_feedback": "served, but nobody rated or corrected it",
    }[reason]


def latest_per_response(rows: Iterable[Mapping[str, Any]]) -> list[Exchange]:
    """Feedback rows (several may judge one answer) folded into one exchange per answer, in
    order of first feedback: the latest thumbs, rating and comment win, and the latest
    non-empty correction."""
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        response_id = str(row["response_id"])
        current = merged.setdefault(
            response_id,
            {
                "response_id": response_id,
                "created_at": str(row.get("answered_at") or row.get("created_at") or ""),
                "model_version": row.get("model_version"),
                "messages": row["messages"],
                "answer": row.get("answer"),
            },
        )
        for name in ("thumbs", "rating", "comment"):
            if row.get(name) is not None:
                current[name] = row[name]
        if (row.get("corrected_answer") or "").strip():
            current["corrected_answer"] = row["corrected_answer"]
    return [Exchange.from_mapping(row) for row in merged.values()]


def run_feedback_curation(
    rows: Sequence[Mapping[str, Any]],
    min_rating: int,
    quarter: str,
    start: datetime,
    end: datetime,
) -> StageOutput[pd.DataFrame]:
    """The feedback `rows` given in [`start`, `end`) (serving.store.read_feedback) curated into
    the raw records of `quarter`, with the verdict on each answer for the asset page."""
    exchanges = latest_per_response(rows)
    frame = records_to_frame(curate_feedback(exchanges, min_rating, quarter))
    verdicts = (
        frame["read_error"].fillna("kept").value_counts().rename_axis("verdict").reset_index()
    )
    return StageOutput(
        value=frame,
        report={
            "quarter": f"{start:%Y-%m-%d} to {end:%Y-%m-%d}",
            "feedback_rows": len(rows),
            "answers_judged": len(exchanges),
            "records": len(frame),
            "kept": int(frame["read_error"].isna().sum()),
            "verdicts": Markdown(verdicts.to_markdown(index=False)),
        },
        data_version=frame_digest(frame),
        preview=frame[["record_id", "text", "response", "read_error"]],
    )
