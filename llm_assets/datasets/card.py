"""The dataset as files a person or another tool can take away: one JSONL file per split, the
chat template training used, and a dataset card (README.md with YAML metadata, the layout
Hugging Face datasets use, so `load_dataset(folder)` reads it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from llm_assets.datasets.sft import PAIR_COLUMNS

# What the exported JSONL holds: the pair, and its length in the base tokenizer's tokens.
EXPORT_COLUMNS = [*PAIR_COLUMNS, "token_count"]
CHAT_TEMPLATE_FILE = "chat_template.jinja"
_STRING_FEATURES = [c for c in EXPORT_COLUMNS if c not in ("messages", "token_count")]


@dataclass
class CardFacts:
    """What the card says about how the dataset was made."""

    base_model: str
    max_length: int
    chat_template: str
    chat_template_origin: str
    languages: list[str]
    system_prompt: str | None
    teacher_model: str | None
    length_stats: pd.DataFrame
    ledger_summary: pd.DataFrame


def size_category(rows: int) -> str:
    """Hugging Face's `size_categories` bucket for a row count."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")]
    bounds += [(1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]
    for bound, label in bounds:
        if rows < bound:
            return label
    return "n>10M"


def jsonl_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain JSON values: messages as lists of {role, content}, counts as ints."""
    records = []
    for row in frame.to_dict("records"):
        record = {column: row.get(column) for column in EXPORT_COLUMNS if column in row}
        record["messages"] = [
            {"role": str(m["role"]), "content": str(m["content"])} for m in row["messages"]
        ]
        if "token_count" in record:
            record["token_count"] = int(record["token_count"])
        records.append(record)
    return records


def jsonl_text(frame: pd.DataFrame) -> str:
    """The split as JSON Lines, exactly the bytes written to `<split>.jsonl`."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in jsonl_records(frame))


def card_metadata(splits: dict[str, pd.DataFrame], languages: list[str]) -> dict[str, Any]:
    """The YAML header: what the Hub and `load_dataset` read (splits, files, features)."""
    sizes = {name: len(jsonl_text(frame).encode()) for name, frame in splits.items()}
    features: list[dict[str, Any]] = [{"name": c, "dtype": "string"} for c in _STRING_FEATURES]
    features.insert(
        EXPORT_COLUMNS.index("messages"),
        {
            "name": "messages",
            "list": [{"name": "role", "dtype": "string"}, {"name": "content", "dtype": "string"}],
        },
    )
    features.append({"name": "token_count", "dtype": "int64"})
    return {
        "pretty_name": "Supervised fine-tuning conversations",
        "language": list(languages),
        "license": "other",
        "task_categories": ["text-generation"],
        "tags": ["sft", "chat", "instruction-tuning", "llm-assets"],
        "size_categories": [size_category(sum(len(f) for f in splits.values()))],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": name, "path": f"{name}.jsonl"} for name in splits],
            }
        ],
        "dataset_info": {
            "features": features,
            "splits": [
                {"name": name, "num_bytes": sizes[name], "num_examples": len(frame)}
                for name, frame in splits.items()
            ],
            "dataset_size": sum(sizes.values()),
        },
    }


def _table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False) if len(frame) else "(none)"


def render_dataset_card(splits: dict[str, pd.DataFrame], facts: CardFacts) -> str:
    """README.md: YAML metadata between `---` lines, then what a reader needs to use the data."""
    header = yaml.safe_dump(card_metadata(splits, facts.languages), sort_keys=False)
    mix = pd.concat([frame.assign(split=name) for name, frame in splits.items()], ignore_index=True)
    by_task = (
        mix.groupby(["split", "source", "task"]).size().rename("rows").reset_index()
        if len(mix)
        else pd.DataFrame()
    )
    teacher = (
        f"Some pairs (`teacher_qa`) were written by the teacher model `{facts.teacher_model}`."
        if facts.teacher_model
        else "No pair was written by a model: every pair comes from the organisation's data."
    )
    files = ", ".join(f"`{name}.jsonl`" for name in splits)
    return f"""---
{header}---

# Supervised fine-tuning conversations

Instruction/response pairs built from the organisation's cleaned data, one JSON object per
line in each split's file: {files}. Each row has `messages` (the chat form training uses),
the same pair as `instruction` / `input` / `output`, and `token_count` under the base
model's tokenizer.

The `golden` split is the evaluation hold-out: never train on it. No golden prompt or answer
appears in `train` or `validation`, exactly or as a near duplicate.

{teacher}

## Splits

{_table(facts.length_stats)}

Token counts are for `{facts.base_model}` with the chat template below; rows over
max_length={facts.max_length} tokens were dropped whole, never truncated.

## Sources and tasks

{_table(by_task)}

## Rows left out, and why

{_table(facts.ledger_summary)}

## Chat template

Origin: {facts.chat_template_origin} (`{CHAT_TEMPLATE_FILE}` in this folder). Training renders
every conversation with it, and serving and evaluation must apply the very same one.
System prompt: {json.dumps(facts.system_prompt)}

```jinja
{facts.chat_template}
```

## Loading

```python
from datasets import load_dataset

splits = load_dataset("path/to/this/folder")  # the splits listed in the header above
```
"""


def write_dataset_export(
    folder: Path, splits: dict[str, pd.DataFrame], card: str, chat_template: str
) -> dict[str, Path]:
    """Write `<split>.jsonl` per split, README.md and the chat template into `folder` (a fresh
    folder the caller swaps into place atomically); returns each file's path by name."""
    paths: dict[str, Path] = {}
    for name, frame in splits.items():
        paths[name] = folder / f"{name}.jsonl"
        paths[name].write_text(jsonl_text(frame), encoding="utf-8")
    paths["card"] = folder / "README.md"
    paths["card"].write_text(card, encoding="utf-8")
    paths["chat_template"] = folder / CHAT_TEMPLATE_FILE
    paths["chat_template"].write_text(chat_template, encoding="utf-8")
    return paths
