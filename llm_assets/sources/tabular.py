"""JSONL and CSV rows (tickets, chats, exports) to raw records."""

from __future__ import annotations

import csv
import io
import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llm_assets.settings import SourceConfig
from llm_assets.sources.records import RawRecord, display_path, matching_files, quarantined


def _text_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | bool | int | float):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)  # dates, decimals and other database types


def template_fields(template: str) -> list[str]:
    """The field names a str.format template uses, in order, each once."""
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    return list(dict.fromkeys(names))


def render_template(template: str, row: dict[str, Any]) -> tuple[str | None, str | None]:
    """(text, None), or (None, the first field the row lacks). Strings and numbers render as
    themselves, so format specs such as {amount:.2f} work; null as an empty string; lists and
    objects as JSON; other values (dates, decimals) as their str()."""
    for name in template_fields(template):
        if name not in row:
            return None, name
    values = {
        name: value
        if isinstance(value, str | int | float) and not isinstance(value, bool)
        else _text_of(value) or ""
        for name, value in row.items()
    }
    return template.format_map(values).strip(), None


def _text_and_response(
    row: dict[str, Any], source: SourceConfig, where: str
) -> tuple[str, str | None] | RawRecord:
    """(text, response) of a row, or a quarantined record saying what is wrong with it."""

    def problem(reason: str, detail: str) -> RawRecord:
        return quarantined(source.name, where, reason, f"{where}: {detail}")

    def rendered(key: str, template: str) -> str | RawRecord:
        try:
            text, missing = render_template(template, row)
        except (ValueError, TypeError) as error:  # a format spec that does not fit the value
            return problem("source.template_error", f"{key} {template!r}: {error}")
        if missing is not None:
            return problem(
                "source.missing_field",
                f"no field '{missing}' (used by {key}); fields are {sorted(row)}",
            )
        return text or ""

    if source.template is not None:
        text = rendered("template", source.template)
        if isinstance(text, RawRecord):
            return text
        if not text:
            return problem("source.empty_text", f"template {source.template!r} renders empty")
    else:
        if source.text_field not in row:
            return problem(
                "source.missing_field",
                f"no field '{source.text_field}' (text_field); fields are {sorted(row)}",
            )
        body = _text_of(row[source.text_field])
        if body is None or not body.strip():
            return problem("source.empty_text", f"'{source.text_field}' is empty")
        prompt_parts = [_text_of(row.get(name)) for name in source.prompt_fields]
        text = "\n\n".join([part for part in prompt_parts if part] + [body])
    response: str | RawRecord | None
    if source.response_template is not None:
        response = rendered("response_template", source.response_template)
        if isinstance(response, RawRecord):
            return response
        response = response or None  # a template over empty fields: no answer
    else:
        response = _text_of(row.get(source.response_field)) if source.response_field else None
    return text, response


def used_fields(source: SourceConfig) -> set[str]:
    """The fields a record's text, response and id come from; the rest are kept in `fields`."""
    if source.template is not None:
        used = set(template_fields(source.template))
    else:
        used = {source.text_field, *source.prompt_fields}
    if source.response_template is not None:
        used.update(template_fields(source.response_template))
    elif source.response_field:
        used.add(source.response_field)
    if source.id_field:
        used.add(source.id_field)
    return used


def row_to_record(row: Any, source: SourceConfig, uri: str, seen_ids: set[str]) -> RawRecord:
    """Map one parsed row onto a record, or a quarantined record saying what is wrong with it."""
    if not isinstance(row, dict):
        return quarantined(
            source.name,
            uri,
            "source.not_an_object",
            f"{uri}: expected an object, got {type(row).__name__}",
        )
    text_and_response = _text_and_response(row, source, uri)
    if isinstance(text_and_response, RawRecord):
        return text_and_response
    text, response = text_and_response
    if len(text) > source.max_record_chars:
        return quarantined(
            source.name,
            uri,
            "source.too_large",
            f"{uri}: {len(text)} characters > max_record_chars={source.max_record_chars}",
        )
    record_id = uri
    if source.id_field:
        if row.get(source.id_field) in (None, ""):
            return quarantined(
                source.name, uri, "source.missing_id", f"{uri}: no '{source.id_field}' (id_field)"
            )
        record_id = str(row[source.id_field])
    if record_id in seen_ids:
        return quarantined(
            source.name,
            uri,
            "source.duplicate_id",
            f"{uri}: {source.id_field}={record_id!r} was already used by an earlier record",
        )
    seen_ids.add(record_id)
    used = used_fields(source)
    extra = {key: value for key, value in row.items() if key not in used}
    return RawRecord(
        record_id=record_id,
        source=source.name,
        uri=uri,
        text=text,
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


def iter_tabular(source: SourceConfig, pattern: str) -> Iterator[RawRecord]:
    """Every row of every file matching `pattern`, as records; unreadable rows are quarantined."""
    rows_of = jsonl_rows if source.kind == "jsonl" else csv_rows
    seen_ids: set[str] = set()
    for path in matching_files(pattern):
        shown = display_path(path, pattern)
        try:
            for uri, row, error, detail in rows_of(path, shown):
                if error:
                    yield quarantined(source.name, uri, error, detail or uri)
                else:
                    yield row_to_record(row, source, uri, seen_ids)
        except OSError as error:
            yield quarantined(source.name, shown, "source.unreadable_file", f"{shown}: {error}")


def read_tabular(source: SourceConfig, pattern: str) -> list[RawRecord]:
    return list(iter_tabular(source, pattern))
