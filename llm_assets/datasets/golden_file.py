"""A user-written golden file: evaluation pairs that replace or extend the sampled hold-out."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd

from llm_assets.datasets.chat_template import to_messages
from llm_assets.datasets.sft import PAIR_COLUMNS, conversation_pair
from llm_assets.settings import ConversationTemplate
from llm_assets.sources.instructions import chat_messages
from llm_assets.storage import jsonl_rows

GOLDEN_SOURCE = "golden_file"
_FORMAT = (
    'each line is a JSON object: {"instruction": ..., "input": ..., "output": ...} (input and '
    'task optional) or {"messages": [{"role": "user", "content": ...}, '
    '{"role": "assistant", "content": ...}]}'
)


class GoldenFileError(ValueError):
    """A golden file line that cannot be used; the message names file, line and format."""


def golden_file_digest(path: Path | None) -> str:
    """A short hash of the file's bytes ('none' without a file): part of the code version, so
    editing the file re-runs the golden set."""
    if path is None:
        return "none"
    if not path.is_file():
        raise GoldenFileError(f"datasets.golden_file: {path} does not exist")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _pair(row: Any, where: str, system_prompt: str | None) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise GoldenFileError(f"{where}: not a JSON object; {_FORMAT}")
    if "messages" in row:
        messages, problem = chat_messages(row["messages"])
        if problem:
            raise GoldenFileError(f"{where}: {problem}; {_FORMAT}")
        if not messages or messages[-1]["role"] != "assistant":
            raise GoldenFileError(f"{where}: the last message must be the assistant's answer")
        pair = conversation_pair(
            messages,
            messages[-1]["content"].strip(),
            ConversationTemplate(task=str(row.get("task") or "golden")),
            system_prompt,
        )
        if pair is None:
            raise GoldenFileError(f"{where}: no user message before the answer")
        return pair
    missing = [key for key in ("instruction", "output") if not str(row.get(key) or "").strip()]
    if missing:
        raise GoldenFileError(f"{where}: empty or missing {missing}; {_FORMAT}")
    instruction = str(row["instruction"]).strip()
    extra_input = str(row.get("input") or "").strip()
    output = str(row["output"]).strip()
    return {
        "task": str(row.get("task") or "golden"),
        "section": "",
        "instruction": instruction,
        "input": extra_input,
        "output": output,
        "messages": to_messages(instruction, output, extra_input, system_prompt),
    }


def read_golden_file(path: Path, system_prompt: str | None) -> pd.DataFrame:
    """The file's rows as pairs (source `golden_file`, record id `<file>#L<line>`), with
    `messages` built as for generated pairs. Raises GoldenFileError on the first bad line."""
    rows = []
    for where, number, row in jsonl_rows(path, GoldenFileError, f"; {_FORMAT}"):
        pair = _pair(row, where, system_prompt)
        record_id = f"{path.name}#L{number}"
        pair_id = hashlib.sha256(f"{GOLDEN_SOURCE}\x00{record_id}".encode()).hexdigest()[:16]
        rows.append({"pair_id": pair_id, "record_id": record_id, "source": GOLDEN_SOURCE, **pair})
    if not rows:
        raise GoldenFileError(f"{path}: no rows; {_FORMAT}")
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def combine_golden(
    sampled: pd.DataFrame, from_file: pd.DataFrame | None, mode: str
) -> pd.DataFrame:
    """The golden set: the sampled hold-out, the file's rows after it (`extend`), or the file's
    rows alone (`replace`)."""
    if from_file is None:
        return sampled
    if mode == "replace":
        return from_file.reset_index(drop=True)
    return pd.concat([sampled, from_file], ignore_index=True)[PAIR_COLUMNS]
