"""From cleaned records to instruction/response pairs in chat form."""

from __future__ import annotations

import hashlib
import json
import re

import pandas as pd

from llm_assets.datasets.chat_template import to_messages
from llm_assets.settings import DatasetConfig

PAIR_COLUMNS = [
    "pair_id",
    "record_id",
    "source",
    "task",
    "instruction",
    "input",
    "output",
    "messages",
]
MIN_SECTION_CHARS = 80
_HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$", flags=re.MULTILINE)


def markdown_sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) for each `#`–`###` section of a Markdown text, in order."""
    matches = list(_HEADING.finditer(text))
    sections = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        sections.append((match.group(2).strip(), body))
    return sections


def _pair_id(source: str, record_id: str, index: int) -> str:
    return hashlib.sha256(f"{source}\x00{record_id}\x00{index}".encode()).hexdigest()[:16]


def pairs_from_record(row: dict[str, object]) -> list[dict[str, object]]:
    """Instruction pairs of one cleaned record: its own answer when it has one (tickets,
    instruction sets), else one question per documentation section."""
    fields = json.loads(str(row.get("fields") or "{}"))
    response = row.get("response")
    if isinstance(response, str) and response.strip():
        instruction = fields.get("instruction") or str(row["text"])
        return [
            {
                "task": fields.get("task", "support_answer"),
                "instruction": instruction,
                "input": fields.get("input", ""),
                "output": response,
            }
        ]
    title = fields.get("title") or str(row["record_id"])
    pairs: list[dict[str, object]] = []
    for heading, body in markdown_sections(str(row["text"])):
        if len(body) < MIN_SECTION_CHARS:
            continue
        question = (
            f"Explain '{heading}' from the {title} documentation."
            if heading != title
            else f"Give an overview of the {title} documentation."
        )
        pairs.append({"task": "doc_section", "instruction": question, "input": "", "output": body})
    return pairs


def build_sft_pairs(corpus: pd.DataFrame, config: DatasetConfig) -> pd.DataFrame:
    """Every pair the corpus yields, with `messages` in the chat form training uses."""
    rows = []
    for record in corpus.to_dict("records"):
        for index, pair in enumerate(pairs_from_record(record)):
            rows.append(
                {
                    "pair_id": _pair_id(str(record["source"]), str(record["record_id"]), index),
                    "record_id": record["record_id"],
                    "source": record["source"],
                    **pair,
                    "messages": to_messages(
                        str(pair["instruction"]),
                        str(pair["output"]),
                        str(pair["input"]),
                        config.system_prompt,
                    ),
                }
            )
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)
