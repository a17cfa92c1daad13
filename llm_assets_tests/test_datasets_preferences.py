from llm_assets.datasets.preferences import judgement, preference_data
from llm_assets.settings import ConversationTemplate
from llm_assets.sources.feedback import Exchange

SYSTEM = "You are the support assistant for Aurora Sync."
QUESTION = "How long is version history kept on Pro?"


def _exchange(response_id: str, answer: str = "180 days.", question: str = QUESTION, **given):  # type: ignore[no-untyped-def]
    return Exchange(
        response_id=response_id,
        created_at="2026-02-01T10:00:00+00:00",
        model_version="3",
        messages=[{"role": "user", "content": question}],
        answer=answer,
        **given,
    )


def _data(exchanges, redact=None):  # type: ignore[no-untyped-def]
    return preference_data(exchanges, 4, "2026-01-01", ConversationTemplate(), SYSTEM, redact)


def test_each_kind_of_feedback_is_judged() -> None:
    assert judgement(_exchange("a", thumbs="up"), 4) == "liked"
    assert judgement(_exchange("a", rating=5), 4) == "liked"
    assert judgement(_exchange("a", thumbs="down"), 4) == "disliked"
    assert judgement(_exchange("a", rating=1), 4) == "disliked"
    assert judgement(_exchange("a", rating=3), 4) == "preference.neutral"
    assert judgement(_exchange("a", thumbs="up", rating=1), 4) == "preference.conflicting"
    assert judgement(_exchange("a"), 4) == "preference.no_feedback"
    assert judgement(_exchange("a", corrected_answer="Ninety days."), 4) == "corrected"
    assert judgement(_exchange("a", corrected_answer=" 180 days. "), 4) == "liked"
    assert judgement(_exchange("a", answer="  ", thumbs="down"), 4) == "preference.empty_answer"


def test_disliked_answers_become_negative_rows_and_corrections_become_pairs() -> None:
    data = _data(
        [
            _exchange("liked", thumbs="up"),
            _exchange("disliked", answer="72 hours.", thumbs="down", question="Port of the agent?"),
            _exchange("fixed", answer="Email the sender.", corrected_answer="Use the VAT form."),
        ]
    )
    rows = {row.row_id: row for row in data.unpaired.itertuples()}
    assert rows["liked:liked"].label and not rows["disliked:disliked"].label
    assert rows["fixed:correction"].completion == [
        {"role": "assistant", "content": "Use the VAT form."}
    ]
    assert not rows["fixed:corrected"].label
    [pair] = data.paired.to_dict("records")
    assert pair["why"] == "correction"
    assert pair["chosen"][0]["content"] == "Use the VAT form."
    assert pair["rejected"][0]["content"] == "Email the sender."
    # The prompt is what SFT renders: the system prompt, then the question.
    assert pair["prompt"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
    ]


def test_the_same_question_liked_once_and_disliked_once_is_a_pair() -> None:
    data = _data(
        [
            _exchange("good", answer="180 days on Pro.", rating=5),
            _exchange("bad", answer="72 hours.", rating=1),
        ]
    )
    [pair] = data.paired.to_dict("records")
    assert pair["why"] == "better_rated" and pair["response_ids"] == ["good", "bad"]
    assert pair["chosen"][0]["content"] == "180 days on Pro."
    assert data.ledger.set_index("response_id")["pairs"].to_dict() == {"good": 1, "bad": 1}


def test_every_exchange_has_a_ledger_row_with_its_reason() -> None:
    exchanges = [
        _exchange("up", thumbs="up"),
        _exchange("again", thumbs="up"),  # the same prompt and answer: a duplicate row
        _exchange("middling", rating=3),
        _exchange("silent"),
        _exchange("torn", thumbs="down", rating=5),
    ]
    data = _data(exchanges)
    reasons = data.ledger.set_index("response_id")["reason"].to_dict()
    assert reasons == {
        "up": "liked",
        "again": "preference.duplicate",
        "middling": "preference.neutral",
        "silent": "preference.no_feedback",
        "torn": "preference.conflicting",
    }
    assert len(data.ledger) == len(exchanges)
    assert data.ledger["unpaired_rows"].sum() == len(data.unpaired) == 1


def test_redaction_runs_over_prompts_and_completions() -> None:
    def redact(texts: list[str]) -> list[str]:
        return [text.replace("alice@example.com", "<EMAIL>") for text in texts]

    data = _data(
        [
            _exchange(
                "pii",
                answer="Write to alice@example.com.",
                question="My email is alice@example.com, why no sync?",
                corrected_answer="Restart the agent, alice@example.com.",
            )
        ],
        redact,
    )
    text = repr(data.unpaired.to_dict("records")) + repr(data.paired.to_dict("records"))
    assert "alice@example.com" not in text and text.count("<EMAIL>") >= 4
