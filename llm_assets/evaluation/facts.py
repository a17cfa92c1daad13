"""Held-out factual questions: short questions written from the documentation, each with the
literal facts (a number with its unit, a setting, a command) a right answer must state.

They are never trained on (a blocking check proves no training prompt is a near copy), and the
model answers them as it is served, so "states the fact" measures what a user would get.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from llm_assets.storage import jsonl_rows

FACT_COLUMNS = ["pair_id", "instruction", "input", "output", "facts", "doc"]


class FactFileError(ValueError):
    """A facts file that cannot be used; the message names the file and line."""


def read_fact_questions(path: Path) -> pd.DataFrame:
    """The questions of a JSONL file of {id, question, facts: [..], doc, answer?} rows, as
    FACT_COLUMNS (`instruction` the question, `output` the reference answer if any), so the
    leak finder reads them as it reads golden pairs."""
    if not path.is_file():
        raise FactFileError(f"factual questions file {path} not found (relative to the profile)")
    rows = []
    for where, number, row in jsonl_rows(path, FactFileError):
        facts = row.get("facts") if isinstance(row, dict) else None
        question = row.get("question") if isinstance(row, dict) else None
        if not isinstance(question, str) or not question.strip():
            raise FactFileError(f"{where}: needs a non-empty string `question`")
        if (
            not isinstance(facts, list)
            or not facts
            or not all(isinstance(f, str) and f.strip() for f in facts)
        ):
            raise FactFileError(f"{where}: needs `facts`, a non-empty list of non-empty strings")
        rows.append(
            {
                "pair_id": str(row.get("id") or f"fact-{number}"),
                "instruction": question.strip(),
                "input": "",
                "output": str(row.get("answer") or ""),
                "facts": [f.strip() for f in facts],
                "doc": str(row.get("doc") or ""),
            }
        )
    if not rows:
        raise FactFileError(f"{path}: no questions")
    return pd.DataFrame(rows, columns=FACT_COLUMNS)


def _folded(text: str) -> str:
    return " ".join(text.replace("\u2192", "->").split()).casefold()


def facts_stated(answer: str, facts: list[str]) -> bool:
    """Whether `answer` states every fact (case and spacing aside)."""
    folded = _folded(answer)
    return all(_folded(fact) in folded for fact in facts)


def chunks_holding_facts(
    chunk_ids: list[str], chunk_texts: list[str], facts: list[str]
) -> list[str]:
    """The ids of the context chunks whose text states every fact."""
    return [
        chunk_id
        for chunk_id, text in zip(chunk_ids, chunk_texts, strict=True)
        if facts_stated(text, facts)
    ]
