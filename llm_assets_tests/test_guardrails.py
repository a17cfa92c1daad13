"""Guardrails around every answer: the scope threshold and its calibration, unseen-PII
withholding on whole and streamed answers, and what the files beside an adapter hold."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from llm_assets.serving.app import guarded_stream
from llm_assets.serving.engine import Completion, TextStream
from llm_assets.serving.guardrails import (
    WITHHELD,
    Guardrails,
    StreamingWithholder,
    answered_question_relevance,
    calibrate_min_relevance,
    guard_answers,
    guardrails_for,
    read_scope_calibration,
    withhold_unseen_pii,
    write_scope_calibration,
)
from llm_assets.settings import GuardrailsConfig, ScopeGuardConfig

INVENTED = "Sure. Call Maria Jensen on +44 20 7946 0958 about the refund of your Pro plan."
READ = "system: You are the support assistant.\nuser: Who handles my refund?"


def test_threshold_is_the_score_the_answered_share_reaches() -> None:
    scores = [0.1 * n for n in range(1, 11)]  # 0.1 .. 1.0

    assert calibrate_min_relevance(scores, 1.0) == pytest.approx(0.1)
    assert calibrate_min_relevance(scores, 0.9) == pytest.approx(0.1)
    assert calibrate_min_relevance(scores, 0.5) == pytest.approx(0.5)
    assert calibrate_min_relevance([*scores, math.nan], 0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="datasets.retrieval"):
        calibrate_min_relevance([math.nan], 0.99)


def test_only_questions_the_data_answers_calibrate_the_scope() -> None:
    rows = pd.DataFrame(
        {
            "messages": [
                [{"role": "user", "content": "q"}, {"role": "assistant", "content": answer}]
                for answer in [
                    "Open Settings > Sync and pick the folders.",
                    "I'm sorry, I can only help with questions about Aurora Sync.",
                    "The canary answer.",
                ]
            ],
            "question_relevance": [0.61, 0.12, math.nan],
        }
    )

    assert answered_question_relevance(rows) == [0.61]
    assert answered_question_relevance(rows.drop(columns=["question_relevance"])) == []


def test_scope_guard_declines_below_the_threshold_only() -> None:
    guard = Guardrails(min_relevance=0.35, out_of_scope_reply="Only Aurora Sync, sorry.")
    off = Guardrails()

    assert guard.guarded("A poem.", 0.2, READ).text == "Only Aurora Sync, sorry."
    assert guard.guarded("A poem.", 0.2, READ).note == "declined"
    assert guard.guarded("Open Settings.", 0.5, READ).text == "Open Settings."
    # Nothing retrieved (closed-book): the guard cannot judge, so it lets the answer through.
    assert not guard.declines(None) and not guard.declines(math.nan)
    assert not off.declines(0.0)


def test_pii_the_prompt_does_not_hold_is_withheld_and_the_rest_kept() -> None:
    text, withheld = withhold_unseen_pii(INVENTED, READ, allow=["Aurora"])
    own = withhold_unseen_pii(
        "Your number +44 20 7946 0958 is saved.", READ + " +44 20 7946 0958", []
    )

    assert "Maria Jensen" not in text and "7946" not in text
    assert text.count(WITHHELD) == 2 and text.endswith("about the refund of your Pro plan.")
    assert sorted(entity for entity, _ in withheld) == ["PERSON", "PHONE"]
    assert own == ("Your number +44 20 7946 0958 is saved.", [])


@pytest.mark.parametrize("piece_length", [1, 3, 7, 40])
def test_a_streamed_answer_is_withheld_as_the_whole_answer_is(piece_length: int) -> None:
    withholder = StreamingWithholder(READ, allow=(), holdback=24)
    pieces = [INVENTED[i : i + piece_length] for i in range(0, len(INVENTED), piece_length)]

    sent = "".join(withholder.feed(piece) for piece in pieces) + withholder.finish()

    assert sent == withhold_unseen_pii(INVENTED, READ, ())[0]
    assert withholder.emitted == sent
    assert "7946" not in sent and "Maria" not in sent


def test_guarded_stream_completes_with_the_text_as_sent() -> None:
    inner = TextStream(iter([INVENTED[:30], INVENTED[30:]]))

    def pieces():  # the engine sets its completion once the stream is read to the end
        yield from (INVENTED[:30], INVENTED[30:])
        inner.completion = Completion(INVENTED, 12, 20, "stop")

    inner.pieces = pieces()
    outer = guarded_stream(inner, StreamingWithholder(READ, ()))

    sent = "".join(outer)

    assert outer.completion is not None
    assert outer.completion.text == sent and WITHHELD in sent
    assert (outer.completion.prompt_tokens, outer.completion.completion_tokens) == (12, 20)


def test_guard_answers_applies_each_prompts_score_and_text() -> None:
    guard = Guardrails(0.3, "Out of scope.", withhold_unseen_pii=True)
    conversations = [[{"role": "user", "content": "Who handles my refund?"}]] * 2

    guarded = guard_answers(guard, [INVENTED, INVENTED], conversations, [0.1, 0.9])

    assert guarded[0].text == "Out of scope." and guarded[0].declined
    assert WITHHELD in guarded[1].text and guarded[1].note == "withheld: PERSON, PHONE"


def test_calibration_travels_with_the_adapter(tmp_path: Path) -> None:
    scope = ScopeGuardConfig(enabled=True, answered_share=0.5, reply="No.")
    write_scope_calibration(tmp_path, [0.2, 0.4, 0.6])

    on = guardrails_for(tmp_path, GuardrailsConfig(scope=scope), allow=["Aurora"])
    scope_off = guardrails_for(tmp_path, GuardrailsConfig(), allow=[])
    untrained = guardrails_for(tmp_path / "base", GuardrailsConfig(scope=scope), allow=[])

    assert read_scope_calibration(tmp_path) == [0.2, 0.4, 0.6]
    assert on.min_relevance == pytest.approx(0.4) and on.out_of_scope_reply == "No."
    assert on.withhold_unseen_pii and on.pii_allow_list == ("Aurora",)
    assert scope_off.min_relevance is None and untrained.min_relevance is None
    (tmp_path / "scope_calibration.json").write_text('{"scores": []}')
    with pytest.raises(ValueError, match="scope_calibration.json"):
        read_scope_calibration(tmp_path)
