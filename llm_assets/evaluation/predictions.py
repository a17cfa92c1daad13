"""The golden set answered by every model under comparison: one row per golden row and model.

The table is what the rest of evaluation reads: the automatic metrics score its answers, the
review export blinds them, and the generation speed per model comes from its batch timings.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from llm_assets.contracts import Adapter
from llm_assets.evaluation.generation import (
    Answerer,
    Generations,
    ModelUnderTest,
    ReferenceScoring,
)
from llm_assets.evaluation.grounding import GroundedPrompts, groundedness
from llm_assets.evaluation.perplexity import PerplexityResult, perplexity_from_rows
from llm_assets.serving.guardrails import Guardrails, guard_answers
from llm_assets.settings import GenerationConfig

CLOSED_BOOK = "closed-book"
RETRIEVAL = "retrieval"

PREDICTION_COLUMNS = [
    "pair_id",
    "source",
    "task",
    "model",
    "model_path",
    "base_model_path",
    "method",
    "model_version",
    "mode",
    "context_chunk_ids",
    "groundedness",
    "conversation",
    "reference",
    "answer",
    "model_answer",
    "guard",
    "new_tokens",
    "batch",
    "batch_latency_ms",
]
# Each model's perplexity, measured on the load that answered: per golden row, the summed NLL
# of its reference answer and its number of tokens; per model, the same for every validation
# conversation (a list, the same on each of the model's rows). The report reads them from here.
PERPLEXITY_COLUMNS = ["golden_nll", "golden_tokens", "validation_nll", "validation_tokens"]


@dataclass(frozen=True)
class Contender:
    """A model in the comparison and where it came from: the registry version for a champion."""

    model: ModelUnderTest
    version: str = ""
    mode: str = CLOSED_BOOK
    # What is checked around its answers, as it is served (llm_assets.serving.guardrails).
    guardrails: Guardrails = field(default_factory=Guardrails)


def contenders(
    adapter: Adapter,
    champion: dict[str, Any] | None = None,
    served_mode: str = CLOSED_BOOK,
    champion_mode: str = CLOSED_BOOK,
    guardrails: Guardrails | None = None,
    champion_guardrails: Guardrails | None = None,
) -> list[Contender]:
    """The tuned adapter and its base model as the tuned model is served (`served_mode`), then
    both in the other mode, labelled `tuned/<mode>` and `base/<mode>`; a preference-tuned
    adapter's SFT model (`sft`) as served; and, when given, the
    champion's manifest (from `find_champion`) as it is served (`champion_mode`). Tuned and
    base answer under `guardrails`, the champion under its own."""
    other = RETRIEVAL if served_mode == CLOSED_BOOK else CLOSED_BOOK
    tuned = ModelUnderTest.from_adapter_manifest("tuned", adapter)
    base = ModelUnderTest("base", adapter.start_model_path)
    guard = guardrails or Guardrails()
    found = [
        Contender(tuned, mode=served_mode, guardrails=guard),
        Contender(replace(tuned, label=f"tuned/{other}"), mode=other, guardrails=guard),
        Contender(base, mode=served_mode, guardrails=guard),
        Contender(replace(base, label=f"base/{other}"), mode=other, guardrails=guard),
    ]
    if adapter.preference_method:
        # Preference-tuned: its own base is the SFT model merged, the model it must beat too.
        found.append(
            Contender(
                ModelUnderTest("sft", adapter.base_model_path), mode=served_mode, guardrails=guard
            )
        )
    if champion is not None:
        found.append(
            Contender(
                ModelUnderTest.from_adapter_manifest("champion", champion),
                version=str(champion.get("version") or ""),
                mode=champion_mode,
                guardrails=champion_guardrails or Guardrails(),
            )
        )
    return found


def vocabulary_mismatch(tokenizer: Any, champion: dict[str, Any]) -> str | None:
    """Why the champion cannot answer prompts tokenized for the tuned model (its tokenizer has
    another vocabulary, or none can be read), or None when it can."""
    from llm_assets.datasets.chat_template import load_chat_tokenizer

    try:
        own = load_chat_tokenizer(champion["path"])
    except (OSError, ValueError) as error:
        return f"its tokenizer at {champion['path']} cannot be read ({error})"
    if own.get_vocab() != tokenizer.get_vocab():
        return (
            f"its tokenizer ({champion['path']}) has another vocabulary than the tuned model's; "
            "it was tuned from another base model"
        )
    return None


def golden_rows(golden: pd.DataFrame) -> pd.DataFrame:
    """pair_id, source, task, messages, conversation (what the reviewer reads) and reference
    (the final answer) of each golden row."""
    from llm_assets.evaluation.review import conversation_text

    messages = [[dict(m) for m in conversation] for conversation in golden["messages"]]
    return pd.DataFrame(
        {
            "pair_id": golden["pair_id"].astype(str).to_list(),
            "source": golden["source"].astype(str).to_list(),
            "task": golden["task"].astype(str).to_list(),
            "messages": messages,
            "conversation": [conversation_text(m) for m in messages],
            "reference": [str(m[-1]["content"]) for m in messages],
        }
    )


def golden_prompts(golden: pd.DataFrame) -> list[list[dict[str, str]]]:
    """Each golden conversation without its final answer: what a client would send."""
    return [[dict(m) for m in messages[:-1]] for messages in golden["messages"]]


def answer_golden_set(
    models: list[Contender],
    tokenizer: Any,
    golden: pd.DataFrame,
    config: GenerationConfig,
    prompts_by_mode: dict[str, GroundedPrompts],
    answer: Answerer | None = None,
    validation: list[list[dict[str, str]]] | None = None,
    max_length: int = 1024,
) -> pd.DataFrame:
    """Each model answers every golden prompt in its mode (the prompts of
    `prompts_by_mode[mode]`, rendered with the tuned model's `tokenizer` and chat template)
    through `answer` (default: transformers). Contenders with the same weights (tuned and
    tuned/<mode>) are loaded once. Returns PREDICTION_COLUMNS; with `validation`
    conversations also PERPLEXITY_COLUMNS, scored at `max_length` tokens on the same load (the
    golden conversations as they are, without retrieved context)."""
    from llm_assets.evaluation.generation import (
        closed_book_texts,
        prompt_texts,
        transformers_answers,
    )

    rows = golden_rows(golden)
    questions = [prompt[-1]["content"] for prompt in golden_prompts(golden)]
    texts = {
        mode: prompt_texts(tokenizer, grounded.conversations)
        for mode, grounded in prompts_by_mode.items()
    }
    twins = {
        mode: closed_book_texts(tokenizer, grounded.closed_book)
        for mode, grounded in prompts_by_mode.items()
    }
    by_weights: dict[tuple[str, str | None], list[Contender]] = {}
    for contender in models:
        weights = (contender.model.base_model_path, contender.model.adapter_path)
        by_weights.setdefault(weights, []).append(contender)
    scoring = None
    if validation is not None:
        splits = {"golden": list(rows["messages"]), "validation": validation}
        scoring = ReferenceScoring(splits, max_length, config.batch_size)
    generated: dict[str, Generations] = {}
    for same_weights in by_weights.values():
        prompt_sets = {c.model.label: texts[c.mode] for c in same_weights}
        closed_book = {c.model.label: twins[c.mode] for c in same_weights}
        generated |= (answer or transformers_answers)(
            same_weights[0].model, tokenizer, prompt_sets, config, scoring, closed_book
        )
    tables = []
    for contender in models:
        generations = generated[contender.model.label]
        grounded = prompts_by_mode[contender.mode]
        guarded = guard_answers(
            contender.guardrails,
            generations.answers,
            grounded.conversations,
            grounded.top_relevance,
        )
        answers = [answer.text for answer in guarded]
        batches = generations.batch_of_answer
        tables.append(
            rows.drop(columns=["messages"]).assign(
                mode=contender.mode,
                context_chunk_ids=grounded.chunk_ids,
                groundedness=[
                    groundedness(text, [question, context])
                    for text, question, context in zip(
                        answers, questions, grounded.contexts, strict=True
                    )
                ],
                model=contender.model.label,
                model_path=contender.model.adapter_path or contender.model.base_model_path,
                base_model_path=contender.model.base_model_path,
                method=contender.model.method if contender.model.adapter_path else "none",
                model_version=contender.version,
                answer=answers,
                model_answer=generations.answers,
                guard=[answer.note for answer in guarded],
                new_tokens=generations.new_tokens,
                batch=batches,
                batch_latency_ms=[generations.batch_latencies_ms[b] for b in batches],
                **_perplexity_columns(generations, len(rows)),
            )
        )
    columns = PREDICTION_COLUMNS + (PERPLEXITY_COLUMNS if scoring else [])
    return pd.concat(tables, ignore_index=True)[columns]


def _perplexity_columns(generations: Generations, rows: int) -> dict[str, list[Any]]:
    if not generations.perplexity:
        return {}
    golden, validation = generations.perplexity["golden"], generations.perplexity["validation"]
    return {
        "golden_nll": golden.row_nll,
        "golden_tokens": golden.row_tokens,
        "validation_nll": [validation.row_nll] * rows,
        "validation_tokens": [validation.row_tokens] * rows,
    }


def stored_perplexities(
    predictions: pd.DataFrame, pair_ids: list[str]
) -> dict[str, dict[str, PerplexityResult]]:
    """label -> split ("golden", "validation") -> the perplexity `answer_golden_set` measured,
    the golden rows in the order of `pair_ids` (so models pair row by row). Raises ValueError
    when the table holds none."""
    missing = [column for column in PERPLEXITY_COLUMNS if column not in predictions.columns]
    if missing:
        raise ValueError(
            f"golden_predictions holds no perplexity (no {', '.join(missing)}): it was "
            "materialized by an older version; materialize golden_predictions again"
        )
    results = {}
    for label, rows in predictions.groupby("model", sort=False):
        by_pair = rows.set_index(rows["pair_id"].astype(str))
        ordered = by_pair.loc[pair_ids]
        results[str(label)] = {
            "golden": perplexity_from_rows(
                [float(v) for v in ordered["golden_nll"]],
                [int(v) for v in ordered["golden_tokens"]],
            ),
            "validation": perplexity_from_rows(
                [float(v) for v in rows["validation_nll"].iloc[0]],
                [int(v) for v in rows["validation_tokens"].iloc[0]],
            ),
        }
    return results


def generation_speed(predictions: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per model: latency_ms_p50 (median time to answer a batch of prompts) and
    tokens_per_second (new tokens over the time spent generating them)."""
    speed = {}
    for label, rows in predictions.groupby("model", sort=False):
        batches = rows.drop_duplicates("batch")["batch_latency_ms"].astype(float).to_list()
        seconds = sum(batches) / 1000
        speed[str(label)] = {
            "latency_ms_p50": statistics.median(batches) if batches else 0.0,
            "tokens_per_second": float(rows["new_tokens"].sum()) / seconds if seconds else 0.0,
        }
    return speed


def answers_by_model(predictions: pd.DataFrame, pair_ids: list[str]) -> dict[str, list[str]]:
    """Each model's answers, in the order of `pair_ids`."""
    result = {}
    for label, rows in predictions.groupby("model", sort=False):
        by_pair = dict(zip(rows["pair_id"].astype(str), rows["answer"].astype(str), strict=True))
        result[str(label)] = [by_pair[pair_id] for pair_id in pair_ids]
    return result
