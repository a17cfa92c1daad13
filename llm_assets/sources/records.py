"""The raw record every reader yields, and its table form."""

from __future__ import annotations

import glob
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

RAW_COLUMNS = [
    "record_id",
    "source",
    "text",
    "response",
    "uri",
    "content_hash",
    "fields",
    "read_error",
    "error_detail",
]


def raw_schema() -> Any:
    """The Parquet schema of raw tables: every column is text."""
    from llm_assets.storage import string_schema

    return string_schema(RAW_COLUMNS)


@dataclass(frozen=True)
class RawRecord:
    """One input record. A record that could not be read keeps its place with `read_error` set,
    so the cleaning ledger can account for it instead of it vanishing."""

    record_id: str
    source: str
    uri: str
    text: str | None = None
    response: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    read_error: str | None = None
    error_detail: str | None = None

    @property
    def content_hash(self) -> str | None:
        if self.text is None:
            return None
        return hashlib.sha256(f"{self.text}\x00{self.response or ''}".encode()).hexdigest()


def records_to_frame(records: list[RawRecord]) -> pd.DataFrame:
    rows = []
    for record in records:
        row = asdict(record)
        row["content_hash"] = record.content_hash
        row["fields"] = json.dumps(record.fields, ensure_ascii=False, sort_keys=True, default=str)
        rows.append(row)
    return pd.DataFrame(rows, columns=RAW_COLUMNS).astype(
        {"record_id": "string", "source": "string", "uri": "string"}
    )


def quarantined(source: str, uri: str, reason: str, detail: str, **fields: Any) -> RawRecord:
    """An unreadable record: `reason` is a `source.*` code, `detail` names file and line."""
    return RawRecord(
        record_id=f"{source}:{uri}",
        source=source,
        uri=uri,
        fields=fields,
        read_error=reason,
        error_detail=detail,
    )


def matching_files(pattern: str) -> list[Path]:
    """Files matching a glob (recursive `**` allowed), sorted so record order is stable."""
    return sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())


def display_path(path: Path, pattern: str) -> str:
    """The path relative to the glob's fixed prefix: short, and stable across machines."""
    prefix = Path(pattern.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0])
    root = prefix if prefix.is_dir() else prefix.parent
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
