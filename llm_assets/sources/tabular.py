"""JSONL and CSV rows (tickets, chats, exports) to raw records."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llm_assets.settings import SourceConfig
from llm_assets.sources.records import RawRecord, display_path, matching_files, quarantined


def _text_of(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def row_to_record(row: Any, source: SourceConfig, uri: str, seen_ids: set[str]) -> RawRecord:
    """Map one parsed row onto a record, or a quarantined record saying what is wrong with it."""
    where = f"{uri}"
    if not isinstance(row, dict):
        return quarantined(
            source.name,
            uri,
            "source.not_an_object",
            f"{where}: expected an object, got {type(row).__name__}",
        )
    if source.text_field not in row:
        return quarantined(
            source.name,
            uri,
            "source.missing_field",
            f"{where}: no field '{source.text_field}' (text_field); fields are {sorted(row)}",
        )
    text = _text_of(row[source.text_field])
    if text is None or not text.strip():
        return quarantined(
            source.name, uri, "source.empty_text", f"{where}: '{source.text_field}' is empty"
        )
    if len(text) > source.max_record_chars:
        return quarantined(
            source.name,
            uri,
            "source.too_large",
            f"{where}: {len(text)} characters > max_record_chars={source.max_record_chars}",
        )
    prompt_parts = [_text_of(row.get(name)) for name in source.prompt_fields]
    full_text = "\n\n".join([part for part in prompt_parts if part] + [text])
    response = _text_of(row.get(source.response_field)) if source.response_field else None

    record_id = uri
    if source.id_field:
        if row.get(source.id_field) in (None, ""):
            return quarantined(
                source.name, uri, "source.missing_id", f"{where}: no '{source.id_field}' (id_field)"
            )
        record_id = str(row[source.id_field])
    if record_id in seen_ids:
        return quarantined(
            source.name,
            uri,
            "source.duplicate_id",
            f"{where}: {source.id_field}={record_id!r} was already used by an earlier record",
        )
    seen_ids.add(record_id)
    used = {source.text_field, source.id_field, source.response_field, *source.prompt_fields}
    extra = {key: value for key, value in row.items() if key not in used}
    return RawRecord(
        record_id=record_id,
        source=source.name,
        uri=uri,
        text=full_text,
        response=response,
        fields=extra,
    )


def jsonl_rows(path: Path, shown: str) -> Iterator[tuple[str, Any, str | None, str | None]]:
    """(uri, parsed row, error code, error detail) per non-blank line."""
    with path.open("rb") as handle:
        for line_number, raw_line in enumerate(handle, start=1):
            uri = f"{shown}#L{line_number}"
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as error:
                yield uri, None, "source.invalid_utf8", f"{uri}: not UTF-8 ({error.reason})"
                continue
            if not line.strip():
                continue
            try:
                yield uri, json.loads(line), None, None
            except json.JSONDecodeError as error:
                yield (
                    uri,
                    None,
                    "source.malformed_json",
                    f"{uri}: {error.msg} at column {error.colno}",
                )


def csv_rows(path: Path, shown: str) -> Iterator[tuple[str, Any, str | None, str | None]]:
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        yield shown, None, "source.invalid_utf8", f"{shown}: not UTF-8 ({error.reason})"
        return
    reader = csv.DictReader(io.StringIO(content, newline=""))
    for row in reader:
        # reader.line_num is the physical line the row ended on; rows can span lines.
        uri = f"{shown}#L{reader.line_num}"
        if None in row:
            yield uri, None, "source.malformed_csv", f"{uri}: more cells than header columns"
            continue
        yield uri, row, None, None


def read_tabular(source: SourceConfig, pattern: str) -> list[RawRecord]:
    """Every row of every file matching `pattern`, as records; unreadable rows are quarantined."""
    rows_of = jsonl_rows if source.kind == "jsonl" else csv_rows
    records: list[RawRecord] = []
    seen_ids: set[str] = set()
    for path in matching_files(pattern):
        shown = display_path(path, pattern)
        try:
            for uri, row, error, detail in rows_of(path, shown):
                if error:
                    records.append(quarantined(source.name, uri, error, detail or uri))
                else:
                    records.append(row_to_record(row, source, uri, seen_ids))
        except OSError as error:
            records.append(
                quarantined(source.name, shown, "source.unreadable_file", f"{shown}: {error}")
            )
    return records
