"""Human review of golden-set answers: blinded A/B files out, validated scores back in.

`build_review_export` pairs each golden prompt with the tuned model's answer and the baseline's,
puts them on sides A and B at random (per row, seeded) and shuffles the rows; reviewers see
neither model names nor which side is which. `write_review_files` writes the sheet as CSV and
JSONL into the review folder; the key (which model is on which side) stays with the caller.
Reviewers fill the score columns (whole numbers 1-5; empty: not reviewed) in place or in copies
whose names keep the export id, and `import_reviews` reads them all back, validating every cell,
and unblinds them into mean scores per model and criterion.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llm_assets.storage import atomic_file

REVIEW_CRITERIA = ("accuracy", "helpfulness", "tone", "factual_correctness")
# What each score asks, for reviewers and for the LLM judge alike (1 = worst, 5 = best).
RUBRIC = {
    "accuracy": "does it answer the question that was asked, and is what it says right?",
    "helpfulness": "could the customer act on it: the steps, settings or next contact they need?",
    "tone": "polite, calm and plain, as a good support agent writes",
    "factual_correctness": "are its facts (names, numbers, plans, paths, commands) true, "
    "with nothing made up?",
}
SIDES = ("a", "b")
SCORE_COLUMNS = [f"{criterion}_{side}" for criterion in REVIEW_CRITERIA for side in SIDES]
SHEET_COLUMNS = [
    "export_id",
    "item_id",
    "conversation",
    "reference",
    "answer_a",
    "answer_b",
    *SCORE_COLUMNS,
    "comment",
]
FILE_PREFIX = "golden-review-"
MAX_ERRORS_SHOWN = 20


class ReviewFileError(ValueError):
    """A filled-in review file that cannot be read; the message names file, row and column."""


@dataclass(frozen=True)
class ReviewExport:
    """The blinded sheet reviewers get, and the key that unblinds it (never given to them)."""

    export_id: str
    sheet: pd.DataFrame  # SHEET_COLUMNS, score columns and comment empty
    key: pd.DataFrame  # item_id, pair_id, a, b: the model label on each side

    def key_records(self) -> dict[str, dict[str, str]]:
        """item_id -> {"pair_id", "a", "b"}."""
        return {
            row.item_id: {"pair_id": row.pair_id, "a": row.a, "b": row.b}
            for row in self.key.itertuples()
        }


def conversation_text(messages: list[dict[str, Any]]) -> str:
    """A conversation up to (not including) its final answer, as reviewers read it; the system
    prompt is left out (it is the same for every row)."""
    shown = [m for m in messages[:-1] if m["role"] != "system"]
    if len(shown) == 1:
        return str(shown[0]["content"])
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in shown)


def build_review_export(
    pair_ids: list[str],
    conversations: list[str],
    references: list[str],
    tuned_answers: list[str],
    baseline_answers: list[str],
    tuned_label: str = "tuned",
    baseline_label: str = "base",
    seed: int = 0,
) -> ReviewExport:
    """A blinded A/B sheet, one row per golden item. The export id is a digest of the content:
    the same answers give the same id, sides and order, so filled files stay valid when the
    predictions are recomputed unchanged."""
    columns = [pair_ids, conversations, references, tuned_answers, baseline_answers]
    if len({len(column) for column in columns}) != 1:
        raise ValueError("review export: every column needs one value per golden item")
    export_id = hashlib.sha256(
        json.dumps([seed, tuned_label, baseline_label, *columns]).encode()
    ).hexdigest()[:12]
    order = np.random.default_rng([seed, int(export_id, 16)]).permutation(len(pair_ids))
    sheet_rows, key_rows = [], []
    for position, index in enumerate(order, start=1):
        pair_id = str(pair_ids[index])
        item_id = f"{export_id}-{position:03d}"
        row_seed = int(hashlib.sha256(f"{seed}:{pair_id}".encode()).hexdigest()[:8], 16)
        tuned_on_a = bool(np.random.default_rng(row_seed).random() < 0.5)
        answer = {tuned_label: tuned_answers[index], baseline_label: baseline_answers[index]}
        side_a, side_b = (
            (tuned_label, baseline_label) if tuned_on_a else (baseline_label, tuned_label)
        )
        sheet_rows.append(
            {
                "export_id": export_id,
                "item_id": item_id,
                "conversation": conversations[index],
                "reference": references[index],
                "answer_a": answer[side_a],
                "answer_b": answer[side_b],
                **{column: "" for column in [*SCORE_COLUMNS, "comment"]},
            }
        )
        key_rows.append({"item_id": item_id, "pair_id": pair_id, "a": side_a, "b": side_b})
    sheet = pd.DataFrame(sheet_rows, columns=SHEET_COLUMNS)
    key = pd.DataFrame(key_rows, columns=["item_id", "pair_id", "a", "b"])
    return ReviewExport(export_id, sheet, key)


def review_file_paths(review_dir: Path, export_id: str) -> dict[str, Path]:
    """Where the blank sheet of an export is written: {"csv": …, "jsonl": …}."""
    return {kind: review_dir / f"{FILE_PREFIX}{export_id}.{kind}" for kind in ("csv", "jsonl")}


def write_review_files(export: ReviewExport, review_dir: Path) -> dict[str, Path]:
    """The sheet as CSV and JSONL in `review_dir`, each written atomically. A file of the same
    export already there is kept as it is: it may hold a reviewer's scores."""
    review_dir.mkdir(parents=True, exist_ok=True)
    paths = review_file_paths(review_dir, export.export_id)
    if not paths["csv"].exists():
        with atomic_file(paths["csv"]) as temporary:
            export.sheet.to_csv(temporary, index=False, quoting=csv.QUOTE_NONNUMERIC)
    if not paths["jsonl"].exists():
        with atomic_file(paths["jsonl"]) as temporary:
            lines = (json.dumps(row, ensure_ascii=False) for row in export.sheet.to_dict("records"))
            temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


@dataclass
class ReviewScores:
    """Unblinded human scores of one export."""

    export_id: str
    review_dir: str
    files: list[str] = field(default_factory=list)  # files with at least one score
    reviews: int = 0  # rows with at least one score
    comments: int = 0
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> criterion
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    # One entry per answer a file scored: {"reviewer": file name, "item_id", "model": label,
    # "scores": {criterion: 1-5}}; two files scoring one answer are two reviewers.
    answers: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "review_dir": self.review_dir,
            "files": self.files,
            "reviews": self.reviews,
            "comments": self.comments,
            "scores": self.scores,
            "counts": self.counts,
            "answers": self.answers,
        }


def import_reviews(
    review_dir: Path, export_id: str, key: dict[str, dict[str, str]]
) -> ReviewScores:
    """Every CSV/JSONL file in `review_dir` whose name holds `export_id`, validated and
    unblinded with `key` (item_id -> {"a": label, "b": label}). Raises ReviewFileError naming
    the file, row and column of every bad cell; files with no scores yet count for nothing."""
    values: dict[str, dict[str, list[int]]] = {}
    result = ReviewScores(export_id=export_id, review_dir=str(review_dir))
    problems: list[str] = []
    paths = sorted(
        path
        for path in (review_dir.glob(f"*{export_id}*") if review_dir.is_dir() else [])
        if path.suffix.lower() in (".csv", ".jsonl") and not path.name.startswith(".")
    )
    for path in paths:
        rows, file_problems = _read_rows(path)
        problems += file_problems
        if file_problems:
            continue
        scored_rows = 0
        for where, row in rows:
            row_problems, scores = _check_row(path, where, row, export_id, key)
            problems += row_problems
            if row_problems or not scores:
                continue
            scored_rows += 1
            item_id = str(row["item_id"]).strip()
            by_side: dict[str, dict[str, int]] = {}
            for (criterion, side), score in scores.items():
                label = key[item_id][side]
                values.setdefault(label, {}).setdefault(criterion, []).append(score)
                by_side.setdefault(side, {})[criterion] = score
            for side, given in sorted(by_side.items()):
                result.answers.append(
                    {
                        "reviewer": path.name,
                        "item_id": item_id,
                        "model": key[item_id][side],
                        "scores": given,
                    }
                )
            result.comments += bool(str(row.get("comment") or "").strip())
        if scored_rows:
            result.files.append(path.name)
            result.reviews += scored_rows
    if problems:
        shown = problems[:MAX_ERRORS_SHOWN]
        more = len(problems) - len(shown)
        raise ReviewFileError(
            "\n".join(shown + ([f"... and {more} more"] if more else []))
            + "\nScores are whole numbers from 1 to 5; leave a cell empty when not reviewed."
        )
    for label, by_criterion in sorted(values.items()):
        result.scores[label] = {c: float(np.mean(v)) for c, v in by_criterion.items()}
        result.counts[label] = {c: len(v) for c, v in by_criterion.items()}
    return result


def _read_rows(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(where, row) per data row ('row 3 (line 4)' / 'line 3'), or the problems of a file that
    cannot be read at all (not UTF-8, not JSON, a missing column)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        return [], [f"{path}: cannot be read as UTF-8 text ({error}); save it as UTF-8"]
    rows: list[tuple[str, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = list(reader.fieldnames or [])
        for number, row in enumerate(reader, start=1):
            rows.append((f"row {number} (line {reader.line_num})", row))
    else:
        columns_seen: set[str] = set()
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                return [], [f"{path}: line {number} is not valid JSON ({error.msg})"]
            if not isinstance(row, dict):
                return [], [f"{path}: line {number} is not a JSON object"]
            rows.append((f"line {number}", row))
            columns_seen |= set(row)
        columns = list(columns_seen) if rows else list(SHEET_COLUMNS)
    missing = [column for column in ["item_id", *SCORE_COLUMNS] if column not in columns]
    if missing:
        return [], [
            f"{path}: column {', '.join(repr(m) for m in missing)} missing (found: "
            f"{', '.join(columns) or 'none'}); keep the header of the exported file"
            + ("; save the CSV comma-separated" if path.suffix.lower() == ".csv" else "")
        ]
    return rows, []


def _check_row(
    path: Path,
    where: str,
    row: dict[str, Any],
    export_id: str,
    key: dict[str, dict[str, str]],
) -> tuple[list[str], dict[tuple[str, str], int]]:
    problems = []
    item_id = str(row.get("item_id") or "").strip()
    if item_id not in key:
        problems.append(
            f"{path}: {where}, column 'item_id': {item_id!r} is not an item of export "
            f"{export_id}; do not edit item_id"
        )
    given_export = str(row.get("export_id") or export_id).strip()
    if given_export != export_id:
        problems.append(
            f"{path}: {where}, column 'export_id': {given_export!r} belongs to another export; "
            f"this file is read for export {export_id}"
        )
    scores: dict[tuple[str, str], int] = {}
    for criterion in REVIEW_CRITERIA:
        for side in SIDES:
            column = f"{criterion}_{side}"
            score, problem = parse_score(row.get(column))
            if problem:
                problems.append(f"{path}: {where}, column '{column}': {problem}")
            elif score is not None:
                scores[(criterion, side)] = score
    return problems, scores


def parse_score(value: Any) -> tuple[int | None, str | None]:
    """(score, None) for a whole number 1-5, (None, None) for an empty cell, (None, problem)
    otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, bool):
        return None, f"{value!r} is not a score from 1 to 5"
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None, f"{value!r} is not a whole number from 1 to 5"
    if not math.isfinite(number) or not number.is_integer():
        return None, f"{value!r} is not a whole number from 1 to 5"
    if not 1 <= number <= 5:
        return None, f"{value!r} is out of range; scores run from 1 to 5"
    return int(number), None
