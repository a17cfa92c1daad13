from datetime import UTC, datetime

import pytest

from llm_assets.sources.feedback import (
    Exchange,
    curate_feedback,
    curation_verdict,
    latest_per_response,
)

QUESTION = [{"role": "user", "content": "How do I restore a deleted vault?"}]


def _exchange(**feedback: object) -> Exchange:
    return Exchange(
        response_id="r1",
        created_at="2026-08-01T10:00:00+00:00",
        model_version="3",
        messages=QUESTION,
        answer="Open the trash.",
        **feedback,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("feedback", "verdict"),
    [
        ({"corrected_answer": "Use Settings > Vaults > Restore.", "thumbs": "down"}, "correction"),
        ({"thumbs": "up"}, "liked"),
        ({"rating": 5}, "liked"),
        ({"rating": 4}, "liked"),
        ({"thumbs": "down"}, "feedback.disliked"),
        ({"rating": 2}, "feedback.disliked"),
        ({"rating": 3}, "feedback.neutral"),
        ({"thumbs": "up", "rating": 1}, "feedback.conflicting"),
        ({"comment": "hm"}, "feedback.no_feedback"),
    ],
)
def test_curation_verdict_prefers_corrections_and_names_every_drop(
    feedback: dict[str, object], verdict: str
) -> None:
    kind, reason = curation_verdict(_exchange(**feedback), min_rating=4)

    assert (kind if kind != "dropped" else reason) == verdict


def test_a_correction_becomes_a_chat_record_answering_with_the_correction() -> None:
    corrected = _exchange(corrected_answer="Use Settings > Vaults > Restore.")

    [record] = curate_feedback([corrected], min_rating=4, quarter="2026-07-01")

    assert record.record_id == "feedback:r1@2026-07-01"
    assert record.read_error is None
    assert record.text == "user: How do I restore a deleted vault?"
    assert record.response == "Use Settings > Vaults > Restore."
    assert record.fields["messages"][-1] == {
        "role": "assistant",
        "content": "Use Settings > Vaults > Restore.",
    }
    assert record.fields["task"] == "feedback_correction"
    assert record.fields["model_version"] == "3"


def test_a_disliked_answer_is_kept_in_the_ledger_as_dropped_with_its_reason() -> None:
    [record] = curate_feedback([_exchange(thumbs="down")], min_rating=4, quarter="2026-07-01")

    assert record.text is None
    assert record.read_error == "feedback.disliked"
    assert "feedback://r1" in (record.error_detail or "")


def test_latest_feedback_wins_and_a_later_correction_is_kept() -> None:
    at = datetime(2026, 8, 1, tzinfo=UTC)
    base = {
        "response_id": "r1",
        "answered_at": at,
        "model_version": "3",
        "messages": QUESTION,
        "answer": "Open the trash.",
    }
    rows = [
        {**base, "thumbs": "up", "rating": None, "corrected_answer": None},
        {**base, "thumbs": "down", "rating": 2, "corrected_answer": "Restore it in Settings."},
        {**base, "thumbs": None, "rating": None, "comment": "thanks", "corrected_answer": ""},
        {**base, "response_id": "r2", "thumbs": "up"},
    ]

    exchanges = latest_per_response(rows)

    assert [e.response_id for e in exchanges] == ["r1", "r2"]
    assert exchanges[0].thumbs == "down"
    assert exchanges[0].rating == 2
    assert exchanges[0].comment == "thanks"
    assert exchanges[0].corrected_answer == "Restore it in Settings."
