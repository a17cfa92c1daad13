"""What is checked around the model on every answer, in evaluation as in serving: a scope guard
that declines questions the documentation does not cover, and PII the answer invents.

- **Scope.** A question whose closest `rag_index` chunk is less similar than `min_relevance`
  gets the profile's out-of-scope reply instead of the model's answer: a 135M model asked for
  a poem writes one, whatever its training said. The threshold is calibrated when the adapter
  is trained, from the training questions the data answers (not those it declines): the
  `answered_share` of them stays above it. Nothing the evaluation reports (golden set, facts,
  red team) takes part in choosing it.
- **Unseen PII.** A name, phone number, card number or address in an answer that appears
  nowhere in what the model read (system prompt, context, question) is made up or memorized;
  it is withheld (`[withheld]`). Values the prompt holds are the user's own or documented.

Evaluation and serving build them the same way (`guardrails_for`): the profile's `guardrails`
section, and the scores the threshold is taken from, which travel with the adapter
(`scope_calibration.json`, written by `qlora_adapter`), so a model is evaluated and served under
the same guard without a flag to remember.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from llm_assets.settings import GuardrailsConfig

SCOPE_CALIBRATION_FILE = "scope_calibration.json"
WITHHELD = "[withheld]"


@dataclass(frozen=True)
class Guardrails:
    """`min_relevance` None: no scope guard (a model served without retrieval)."""

    min_relevance: float | None = None
    out_of_scope_reply: str = ""
    withhold_unseen_pii: bool = False
    pii_allow_list: tuple[str, ...] = ()

    def declines(self, top_relevance: float | None) -> bool:
        """Whether a question whose closest chunk scored `top_relevance` is out of scope
        (None: nothing was retrieved for it, so the guard cannot judge and lets it through)."""
        if self.min_relevance is None or top_relevance is None or math.isnan(top_relevance):
            return False
        return top_relevance < self.min_relevance

    def guarded(self, answer: str, top_relevance: float | None, read: str) -> GuardedAnswer:
        """`answer` as it is returned: the out-of-scope reply when the question is out of
        scope, else the answer with PII that `read` (what the model read) does not hold
        withheld."""
        if self.declines(top_relevance):
            return GuardedAnswer(self.out_of_scope_reply, declined=True)
        if not self.withhold_unseen_pii:
            return GuardedAnswer(answer)
        text, withheld = withhold_unseen_pii(answer, read, self.pii_allow_list)
        return GuardedAnswer(text, withheld=tuple(withheld))


@dataclass(frozen=True)
class GuardedAnswer:
    text: str
    declined: bool = False
    withheld: tuple[tuple[str, str], ...] = ()

    @property
    def note(self) -> str:
        """What the guardrails did: `declined` (out of scope), `withheld: ENTITY, …` or empty."""
        if self.declined:
            return "declined"
        if self.withheld:
            return "withheld: " + ", ".join(entity for entity, _ in self.withheld)
        return ""


def read_text(conversation: Sequence[dict[str, str]]) -> str:
    """Everything the model read in a conversation: what an answer may repeat."""
    return "\n".join(message["content"] for message in conversation)


def guard_answers(
    guardrails: Guardrails,
    answers: Sequence[str],
    conversations: Sequence[Sequence[dict[str, str]]],
    top_relevance: Sequence[float | None],
) -> list[GuardedAnswer]:
    """`Guardrails.guarded` over a batch: each answer to the conversation the model read,
    whose question's closest chunk scored `top_relevance` (None closed-book)."""
    return [
        guardrails.guarded(answer, relevance, read_text(conversation))
        for answer, conversation, relevance in zip(
            answers, conversations, top_relevance, strict=True
        )
    ]


def calibrate_min_relevance(relevances: Sequence[float], answered_share: float) -> float:
    """The similarity that `answered_share` of the answered training questions reach: the
    (1 - answered_share) quantile of their closest-chunk scores (lower interpolation, so the
    threshold is a score some question really had)."""
    scores = sorted(score for score in relevances if not math.isnan(score))
    if not scores:
        raise ValueError(
            "no training question has a retrieval score to calibrate the scope guard on; turn "
            "datasets.retrieval on, or guardrails.scope off"
        )
    position = math.floor((1 - answered_share) * (len(scores) - 1))
    return scores[position]


def unseen_pii(answer: str, read: str, allow: Sequence[str]) -> list[tuple[int, int, str]]:
    """Spans (start, end, entity) of PII values in `answer` that `read` does not hold
    (case-insensitive) and that are not on the allow list."""
    from llm_assets.cleaning.pii import PII_ENTITIES, find_pii

    seen = read.casefold()
    allowed = {value.casefold() for value in allow}
    spans = []
    for start, end, entity in find_pii(answer, PII_ENTITIES, allow):
        value = answer[start:end].strip().casefold()
        if value and value not in allowed and value not in seen:
            spans.append((start, end, entity))
    return spans


def withhold_unseen_pii(
    answer: str, read: str, allow: Sequence[str]
) -> tuple[str, list[tuple[str, str]]]:
    """`answer` with every unseen PII value replaced by WITHHELD, and (entity, value) of each."""
    spans = unseen_pii(answer, read, allow)
    withheld = [(entity, answer[start:end]) for start, end, entity in spans]
    return _withheld_text(answer, spans, 0, len(answer)), withheld


def _withheld_text(text: str, spans: list[tuple[int, int, str]], start: int, end: int) -> str:
    """`text[start:end]` with each span in it replaced by WITHHELD; a span that began before
    `start` is withheld from `start` on (what came before it has gone out already)."""
    pieces, position = [], start
    for span_start, span_end, _ in spans:
        if span_end <= start or span_start >= end:
            continue
        pieces += [text[position : max(span_start, position)], WITHHELD]
        position = span_end
    pieces.append(text[position:end])
    return "".join(pieces)


class StreamingWithholder:
    """Unseen-PII withholding over a streamed answer: text goes out once it is `holdback`
    characters behind the newest piece and not inside a PII value, so a value split across
    pieces is still withheld whole. The answer is scanned again only after `holdback` new
    characters, not on every piece."""

    def __init__(self, read: str, allow: Sequence[str], holdback: int = 64) -> None:
        self.read = read
        self.allow = tuple(allow)
        self.holdback = holdback
        self.text = ""
        self.sent = 0  # characters of `text` already emitted (guarded)
        self.scanned = 0
        self.emitted = ""  # everything returned so far: the answer as the client saw it

    def feed(self, piece: str) -> str:
        """What can be emitted after `piece` arrived (possibly nothing yet)."""
        self.text += piece
        if len(self.text) - self.scanned < self.holdback:
            return ""
        self.scanned = len(self.text)
        return self._emit(len(self.text) - self.holdback)

    def finish(self) -> str:
        """The rest, once the answer is complete."""
        return self._emit(len(self.text))

    def _emit(self, limit: int) -> str:
        spans = unseen_pii(self.text, self.read, self.allow)
        for start, end, _ in spans:
            if start < limit < end:  # never cut through a value
                limit = start
        if limit <= self.sent:
            return ""
        # No span crosses `limit` now, so the text out ends exactly there.
        out = _withheld_text(self.text, spans, self.sent, limit)
        self.sent = limit
        self.emitted += out
        return out


def answered_question_relevance(rows: pd.DataFrame) -> list[float]:
    """The closest-chunk scores (`question_relevance`) of the training questions the data
    answers: rows whose answer is not a refusal and that were retrieved for (planted canaries
    were not)."""
    from llm_assets.evaluation.redteam_rules import is_refusal

    if "question_relevance" not in rows:
        return []
    answers = [str(messages[-1]["content"]) for messages in rows["messages"]]
    return [
        float(score)
        for score, answer in zip(rows["question_relevance"], answers, strict=True)
        if not math.isnan(float(score)) and not is_refusal(answer)
    ]


def write_scope_calibration(folder: Path, relevances: Sequence[float]) -> None:
    """The answered training questions' scores beside the adapter: the threshold is taken
    from them when the model is evaluated or served, at the profile's `answered_share`."""
    (Path(folder) / SCOPE_CALIBRATION_FILE).write_text(
        json.dumps({"answered_question_relevance": [round(s, 6) for s in relevances]}),
        encoding="utf-8",
    )


# A registered version carries its calibration in a tag (MLflow caps tag values at 8,000
# characters): this many evenly spaced ranks of the sorted scores keep every quantile to within
# 0.2 % of the answered share.
TAG_POINTS = 500


def scope_calibration_tag(folder: str | Path) -> str:
    """The folder's calibration as a version tag value ("" for none): the sorted scores, thinned
    to TAG_POINTS evenly spaced ranks when there are more."""
    scores = read_scope_calibration(folder)
    if not scores:
        return ""
    ordered = sorted(scores)
    if len(ordered) > TAG_POINTS:
        last = len(ordered) - 1
        ordered = [ordered[round(i * last / (TAG_POINTS - 1))] for i in range(TAG_POINTS)]
    return json.dumps({"answered_question_relevance": [round(s, 4) for s in ordered]})


def read_scope_calibration(folder: str | Path | None) -> list[float] | None:
    """The scores written by `write_scope_calibration`, or None for a folder without them (a
    base model, a model trained without retrieval)."""
    if not folder:
        return None
    path = Path(folder) / SCOPE_CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return [float(score) for score in saved["answered_question_relevance"]]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path}: not a scope calibration ({error}); qlora_adapter writes it as "
            '{"answered_question_relevance": [<score>, ...]}'
        ) from error


def guardrails_for(
    model_folder: str | Path | None, config: GuardrailsConfig, allow: Sequence[str]
) -> Guardrails:
    """The guardrails a model in `model_folder` answers under: the profile's settings, with the
    scope threshold from the model's own calibration (no scope guard without one)."""
    scores = read_scope_calibration(model_folder) if config.scope.enabled else None
    threshold = calibrate_min_relevance(scores, config.scope.answered_share) if scores else None
    return Guardrails(
        min_relevance=threshold,
        out_of_scope_reply=config.scope.reply,
        withhold_unseen_pii=config.withhold_unseen_pii,
        pii_allow_list=tuple(allow),
    )
