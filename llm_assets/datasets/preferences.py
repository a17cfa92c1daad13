"""What users said about served answers, as preference data: unpaired rows (prompt, completion,
label) for KTO and pairs (prompt, chosen, rejected) for DPO, in the conversational form trl
reads, with the prompt built exactly as SFT builds it (same system prompt, same history).

Unlike `feedback_records`, which keeps only what went well, a disliked answer is a signal here:
it is the `False` row of KTO and the `rejected` side of a pair. Every exchange gets one ledger
row saying what it became or why it was not used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from llm_assets.datasets.sft import conversation_pair
from llm_assets.settings import ConversationTemplate
from llm_assets.sources.feedback import Exchange

Redactor = Callable[[list[str]], list[str]]

UNPAIRED_COLUMNS = ["row_id", "response_id", "prompt", "completion", "label", "signal"]
PAIRED_COLUMNS = ["pair_id", "response_ids", "prompt", "chosen", "rejected", "why"]
LEDGER_COLUMNS = ["response_id", "quarter", "unpaired_rows", "pairs", "reason"]


@dataclass(frozen=True)
class PreferenceData:
    unpaired: pd.DataFrame  # KTO
    paired: pd.DataFrame  # DPO
    ledger: pd.DataFrame  # one row per exchange


def judgement(exchange: Exchange, min_rating: int) -> str:
    """`corrected`, `liked` or `disliked`, or the `preference.*` reason it says nothing."""
    if exchange.corrected_answer:
        if exchange.corrected_answer.strip() == exchange.answer.strip():
            return "liked"  # "corrected" into itself: an approval
        return "corrected"
    liked = exchange.thumbs == "up" or (
        exchange.rating is not None and exchange.rating >= min_rating
    )
    disliked = exchange.thumbs == "down" or (exchange.rating is not None and exchange.rating <= 2)
    if liked and disliked:
        return "preference.conflicting"
    if not exchange.answer.strip() and (liked or disliked):
        return "preference.empty_answer"
    if liked:
        return "liked"
    if disliked:
        return "disliked"
    return "preference.neutral" if exchange.rating is not None else "preference.no_feedback"


def _prompt(
    exchange: Exchange, template: ConversationTemplate, system_prompt: str | None
) -> list[dict[str, str]] | None:
    """The prompt as SFT renders this conversation: its system message (or `system_prompt`),
    the kept history, the question; None when no user turn asks anything."""
    turns = [*exchange.messages, {"role": "assistant", "content": exchange.answer}]
    pair = conversation_pair(turns, exchange.answer, template, system_prompt)
    return None if pair is None else list(pair["messages"][:-1])


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def preference_data(
    exchanges: Sequence[Exchange],
    min_rating: int,
    quarter: str,
    template: ConversationTemplate,
    system_prompt: str | None,
    redact: Redactor | None = None,
) -> PreferenceData:
    """Preference rows of one quarter's judged answers.

    - corrected: the correction as `True`, the served answer as `False`, and the pair;
    - liked / disliked: the served answer as `True` / `False`;
    - two answers to the same prompt, one liked and one disliked: a pair (`better_rated`);
    - conflicting thumbs and rating, a middling rating, no feedback, an empty answer, a
      conversation without a question: no row, and the reason in the ledger.

    `redact` (PII) runs over every prompt turn and completion; rows that are exact duplicates
    of an earlier one are left out and counted in the ledger."""
    texts: list[str] = []
    for exchange in exchanges:
        texts += [m["content"] for m in exchange.messages]
        texts += [exchange.answer, exchange.corrected_answer or ""]
    redacted = iter(redact(texts) if redact else texts)

    unpaired: list[dict[str, object]] = []
    paired: list[dict[str, object]] = []
    ledger: list[dict[str, object]] = []
    liked_by_prompt: dict[str, list[tuple[Exchange, list[dict[str, str]]]]] = {}
    disliked_by_prompt: dict[str, list[tuple[Exchange, list[dict[str, str]]]]] = {}
    seen: set[tuple[str, str, bool]] = set()
    seen_pairs: set[tuple[str, str, str]] = set()
    duplicates = 0
    for original in exchanges:
        messages = [{"role": m["role"], "content": next(redacted)} for m in original.messages]
        answer, correction = next(redacted), next(redacted)
        exchange = Exchange(
            response_id=original.response_id,
            created_at=original.created_at,
            model_version=original.model_version,
            messages=messages,
            answer=answer,
            thumbs=original.thumbs,
            rating=original.rating,
            corrected_answer=correction or None,
        )
        verdict = judgement(exchange, min_rating)
        prompt = _prompt(exchange, template, system_prompt)
        if prompt is None and not verdict.startswith("preference."):
            verdict = "preference.no_question"
        if verdict.startswith("preference."):
            ledger.append(_ledger_row(exchange, quarter, 0, 0, verdict))
            continue
        assert prompt is not None
        rows = {
            "corrected": [
                (exchange.corrected_answer or "", True, "correction"),
                (answer, False, "corrected"),
            ],
            "liked": [(answer, True, "liked")],
            "disliked": [(answer, False, "disliked")],
        }[verdict]
        kept = 0
        key = repr(prompt)
        for completion, label, signal in rows:
            if (key, completion, label) in seen:
                duplicates += 1
                continue
            seen.add((key, completion, label))
            unpaired.append(
                {
                    "row_id": f"{exchange.response_id}:{signal}",
                    "response_id": exchange.response_id,
                    "prompt": prompt,
                    "completion": _assistant(completion),
                    "label": label,
                    "signal": signal,
                }
            )
            kept += 1
        pairs = 0
        correction_pair = (key, exchange.corrected_answer or "", answer)
        if verdict == "corrected" and correction_pair not in seen_pairs:
            seen_pairs.add(correction_pair)
            paired.append(
                {
                    "pair_id": f"{exchange.response_id}:correction",
                    "response_ids": [exchange.response_id],
                    "prompt": prompt,
                    "chosen": _assistant(exchange.corrected_answer or ""),
                    "rejected": _assistant(answer),
                    "why": "correction",
                }
            )
            pairs = 1
        elif verdict in ("liked", "disliked"):
            by_prompt = liked_by_prompt if verdict == "liked" else disliked_by_prompt
            by_prompt.setdefault(key, []).append((exchange, prompt))
        reason = verdict if kept else "preference.duplicate"
        ledger.append(_ledger_row(exchange, quarter, kept, pairs, reason))

    # The same question answered twice, once liked and once disliked: a pair.
    pair_counts: dict[str, int] = {}
    for key, disliked in disliked_by_prompt.items():
        liked = liked_by_prompt.get(key, [])
        for (good, prompt), (bad, _) in zip(liked, disliked, strict=False):
            if good.answer.strip() == bad.answer.strip():
                continue
            paired.append(
                {
                    "pair_id": f"{good.response_id}>{bad.response_id}",
                    "response_ids": [good.response_id, bad.response_id],
                    "prompt": prompt,
                    "chosen": _assistant(good.answer),
                    "rejected": _assistant(bad.answer),
                    "why": "better_rated",
                }
            )
            for response_id in (good.response_id, bad.response_id):
                pair_counts[response_id] = pair_counts.get(response_id, 0) + 1
    ledger_frame = pd.DataFrame(ledger, columns=LEDGER_COLUMNS)
    if pair_counts:
        ledger_frame["pairs"] += ledger_frame["response_id"].map(pair_counts).fillna(0).astype(int)
    ledger_frame.attrs["duplicate_rows"] = duplicates
    return PreferenceData(
        unpaired=pd.DataFrame(unpaired, columns=UNPAIRED_COLUMNS),
        paired=pd.DataFrame(paired, columns=PAIRED_COLUMNS),
        ledger=ledger_frame,
    )


def _ledger_row(
    exchange: Exchange, quarter: str, unpaired: int, pairs: int, reason: str
) -> dict[str, object]:
    return {
        "response_id": exchange.response_id,
        "quarter": quarter,
        "unpaired_rows": unpaired,
        "pairs": pairs,
        "reason": reason,
    }
