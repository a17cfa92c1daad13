"""Ready instruction sets: Alpaca-style `instruction`/`input`/`output`, as a JSON array or JSONL."""

from __future__ import annotations

import json
from typing import Any

from llm_assets.settings import SourceConfig
from llm_assets.sources.records import RawRecord, display_path, matching_files, quarantined
from llm_assets.sources.tabular import jsonl_rows


def instruction_to_record(row: Any, source: SourceConfig, uri: str) -> RawRecord:
    if not isinstance(row, dict):
        return quarantined(source.name, uri, "source.not_an_object", f"{uri}: expected an object")
    missing = [key for key in ("instruction", "output") if not str(row.get(key) or "").strip()]
    if missing:
        return quarantined(
            source.name, uri, "source.missing_field", f"{uri}: empty or missing {missing}"
        )
    instruction = str(row["instruction"]).strip()
    extra_input = str(row.get("input") or "").strip()
    text = f"{instruction}\n\n{extra_input}" if extra_input else instruction
    record_id = str(row[source.id_field]) if source.id_field and row.get(source.id_field) else uri
    return RawRecord(
        record_id=record_id,
        source=source.name,
        uri=uri,
        text=text,
        response=str(row["output"]).strip(),
        fields={"instruction": instruction, "input": extra_input, "task": "instruction"},
    )


def read_instructions(source: SourceConfig, pattern: str) -> list[RawRecord]:
    records: list[RawRecord] = []
    for path in matching_files(pattern):
        shown = display_path(path, pattern)
        if path.suffix.lower() == ".json":
            try:
                rows = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                records.append(
                    quarantined(source.name, shown, "source.malformed_json", f"{shown}: {error}")
                )
                continue
            if not isinstance(rows, list):
                records.append(
                    quarantined(
                        source.name,
                        shown,
                        "source.not_an_array",
                        f"{shown}: an instruction file is a JSON array of objects",
                    )
                )
                continue
            for index, row in enumerate(rows):
                records.append(instruction_to_record(row, source, f"{shown}#{index}"))
            continue
        for uri, row, problem, detail in jsonl_rows(path, shown):
            if problem:
                records.append(quarantined(source.name, uri, problem, detail or uri))
            else:
                records.append(instruction_to_record(row, source, uri))
    return records
