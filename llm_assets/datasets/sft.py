"""From cleaned records to instruction/response pairs in chat form.

How a record becomes pairs depends on what it holds: a chat record (`messages`) one multi-turn
pair; an instruction record its own instruction/input/output; any other record with an answer
(a ticket, a CSV or SQL row) one pair through its source's answer template; a document without
answers the section tasks of `datasets.templates.documents`, plus teacher pairs when a teacher
is configured. Every template comes from conf.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from llm_assets.datasets.chat_template import to_messages
from llm_assets.datasets.documents import document_pairs, markdown_sections
from llm_assets.datasets.teacher import TeacherClient, TeacherStats, teacher_section_pairs
from llm_assets.settings import AnswerTemplate, ConversationTemplate, DatasetConfig

__all__ = ["PAIR_COLUMNS", "build_sft_pairs", "markdown_sections", "pairs_from_record"]

PAIR_COLUMNS = [
    "pair_id",
    "record_id",
    "source",
    "task",
    "section",
    "instruction",
    "input",
    "output",
    "messages",
]
SKIPPED_COLUMNS = ["record_id", "source", "reason", "detail"]


@dataclass
class RecordPairs:
    """The pairs of one record, or why it has none (`reason` a `dataset.*` code)."""

    pairs: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    detail: str | None = None


@dataclass
class PairBuild:
    pairs: pd.DataFrame
    skipped: pd.DataFrame
    teacher: TeacherStats | None = None


class MissingTemplateField(KeyError):
    pass


def fill_template(template: str, values: dict[str, Any]) -> str:
    """`template` with `{name}` fields filled from `values`; MissingTemplateField names the
    first field `values` lacks."""
    try:
        return template.format_map(values).strip()
    except KeyError as error:
        raise MissingTemplateField(error.args[0]) from None


def conversation_pair(
    messages: list[dict[str, str]],
    answer: str,
    template: ConversationTemplate,
    system_prompt: str | None,
) -> dict[str, Any] | None:
    """A multi-turn pair: the turns before the last assistant turn (the last `history_turns`
    before the final user turn), then `answer`. `instruction` is the final user turn, `input`
    the earlier turns as `role: content` lines. The conversation's own system message wins over
    `system_prompt`. None if no user turn precedes the answer."""
    last_answer = max(
        (i for i, message in enumerate(messages) if message["role"] == "assistant"), default=None
    )
    before = [m for m in messages[:last_answer] if m["content"].strip()]
    system = [m for m in before if m["role"] == "system"]
    turns = [m for m in before if m["role"] != "system"]
    users = [i for i, message in enumerate(turns) if message["role"] == "user"]
    if not users:
        return None
    history = turns[: users[-1]]
    if template.history_turns is not None:
        history = history[len(history) - template.history_turns :] if template.history_turns else []
    # Templates such as Llama's and Mistral's reject a conversation that opens with an answer.
    while history and history[0]["role"] != "user":
        history = history[1:]
    if not system and system_prompt:
        system = [{"role": "system", "content": system_prompt}]
    kept = [*system, *history, *turns[users[-1] :], {"role": "assistant", "content": answer}]
    return {
        "task": template.task,
        "section": "",
        "instruction": turns[users[-1]]["content"].strip(),
        "input": "\n".join(f"{m['role']}: {m['content'].strip()}" for m in history),
        "output": answer,
        "messages": [{"role": m["role"], "content": m["content"]} for m in kept],
    }


def _answer_template(config: DatasetConfig, source: str) -> tuple[AnswerTemplate, str]:
    templates = config.templates
    if source in templates.by_source:
        return templates.by_source[source], f"datasets.templates.by_source.{source}"
    return templates.answer, "datasets.templates.answer"


def pairs_from_record(row: dict[str, Any], config: DatasetConfig) -> RecordPairs:
    """The pairs one cleaned record yields (without teacher pairs), or why it yields none."""
    fields = json.loads(str(row.get("fields") or "{}"))
    response = row.get("response")
    key = f"{row['source']}/{row['record_id']}"
    if isinstance(response, str) and response.strip():
        if isinstance(fields.get("messages"), list):
            pair = conversation_pair(
                fields["messages"], response, config.templates.conversation, config.system_prompt
            )
            if pair is None:
                return RecordPairs(
                    reason="dataset.no_user_turn", detail=f"{key}: no user turn before the answer"
                )
            return RecordPairs([pair])
        if fields.get("instruction"):
            pair = {
                "task": fields.get("task", "instruction"),
                "section": "",
                "instruction": str(fields["instruction"]),
                "input": str(fields.get("input") or ""),
                "output": response,
            }
            return RecordPairs([pair])
        template, setting = _answer_template(config, str(row["source"]))
        scalars = {k: v for k, v in fields.items() if isinstance(v, str | int | float | bool)}
        values = {
            **scalars,
            "text": str(row["text"]),
            "response": response,
            "source": row["source"],
            "record_id": row["record_id"],
        }
        filled = {}
        for part in ("instruction", "input", "output"):
            try:
                filled[part] = fill_template(getattr(template, part), values)
            except MissingTemplateField as missing:
                return RecordPairs(
                    reason="dataset.template_field_missing",
                    detail=f"{key}: {setting}.{part} names {{{missing.args[0]}}}, which this "
                    f"record does not have (it has {sorted(values)})",
                )
        if not filled["instruction"] or not filled["output"]:
            return RecordPairs(
                reason="dataset.empty_pair",
                detail=f"{key}: {setting} gave an empty instruction or output",
            )
        return RecordPairs([{"task": template.task, "section": "", **filled}])
    documents = config.templates.documents
    title = fields.get("title") or str(row["record_id"])
    pairs = document_pairs(title, str(row["text"]), documents)
    if pairs:
        return RecordPairs(list(pairs))
    detail = (
        "datasets.templates.documents.tasks is empty"
        if not documents.tasks
        else f"no answer, and no '#'-'###' section of {documents.min_section_chars}+ characters"
    )
    return RecordPairs(reason="dataset.no_sections", detail=f"{key}: {detail}")


def _pair_id(source: str, record_id: str, task: str, section: str, number: int) -> str:
    key = f"{source}\x00{record_id}\x00{task}\x00{section}\x00{number}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def build_sft_pairs(
    corpus: pd.DataFrame, config: DatasetConfig, teacher: TeacherClient | None = None
) -> PairBuild:
    """Every pair the corpus yields, with `messages` in the chat form training uses, and one
    row per record that yields none with the reason. With `teacher`, documents also get the
    pairs it writes for each section."""
    rows = []
    skipped = []
    stats = TeacherStats() if teacher is not None else None
    for record in corpus.to_dict("records"):
        result = pairs_from_record(record, config)
        pairs = result.pairs
        if teacher is not None and stats is not None and not _has_answer(record):
            fields = json.loads(str(record.get("fields") or "{}"))
            sections = [
                (heading, body)
                for heading, body in markdown_sections(str(record["text"]))
                if len(body) >= config.templates.documents.min_section_chars
            ]
            title = fields.get("title") or str(record["record_id"])
            pairs = pairs + teacher_section_pairs(teacher, config.teacher, title, sections, stats)
        if not pairs:
            skipped.append(
                {
                    "record_id": record["record_id"],
                    "source": record["source"],
                    "reason": result.reason,
                    "detail": result.detail,
                }
            )
            continue
        numbers: Counter[tuple[str, str]] = Counter()
        for pair in pairs:
            number = numbers[(pair["task"], pair["section"])]
            numbers[(pair["task"], pair["section"])] += 1
            messages = pair.get("messages") or to_messages(
                str(pair["instruction"]),
                str(pair["output"]),
                str(pair["input"]),
                config.system_prompt,
            )
            rows.append(
                {
                    "pair_id": _pair_id(
                        str(record["source"]),
                        str(record["record_id"]),
                        str(pair["task"]),
                        str(pair["section"]),
                        number,
                    ),
                    "record_id": record["record_id"],
                    "source": record["source"],
                    **{k: pair[k] for k in ("task", "section", "instruction", "input", "output")},
                    "messages": messages,
                }
            )
    return PairBuild(
        pd.DataFrame(rows, columns=PAIR_COLUMNS),
        pd.DataFrame(skipped, columns=SKIPPED_COLUMNS),
        stats,
    )


def _has_answer(record: dict[str, Any]) -> bool:
    response = record.get("response")
    return isinstance(response, str) and bool(response.strip())


def records_without_pairs(
    corpus: pd.DataFrame, pairs: pd.DataFrame, config: DatasetConfig
) -> pd.DataFrame:
    """One row per corpus record that has no pair in `pairs`, with the reason the templates
    give (the same function that built the pairs, run again on those records only)."""
    with_pairs = set(zip(pairs["source"].astype(str), pairs["record_id"].astype(str), strict=True))
    rows = []
    for record in corpus.to_dict("records"):
        if (str(record["source"]), str(record["record_id"])) in with_pairs:
            continue
        result = pairs_from_record(record, config)
        rows.append(
            {
                "record_id": record["record_id"],
                "source": record["source"],
                "reason": result.reason or "dataset.no_pairs",
                "detail": result.detail or "its pairs were not in sft_pairs",
            }
        )
    return pd.DataFrame(rows, columns=SKIPPED_COLUMNS)
