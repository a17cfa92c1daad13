"""Ready instruction sets, as a JSON array or JSONL: Alpaca-style `instruction`/`input`/`output`
records, or chat records with `messages` (a list of {role, content})."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from llm_assets.settings import SourceConfig
from llm_assets.sources.records import RawRecord, display_path, matching_files, quarantined
from llm_assets.sources.tabular import jsonl_rows

CHAT_ROLES = ("system", "user", "assistant", "tool")


def _record_id(row: dict[str, Any], source: SourceConfig, uri: str) -> str:
    return str(row[source.id_field]) if source.id_field and row.get(source.id_field) else uri


def _too_large(text: str, source: SourceConfig, uri: str) -> RawRecord | None:
    if len(text) <= source.max_record_chars:
        return None
    return quarantined(
        source.name,
        uri,
        "source.too_large",
        f"{uri}: {len(text)} characters > max_record_chars={source.max_record_chars}",
    )


def message_content(content: Any) -> str | None:
    """A message's text: a string, or a list of {type: text, text} parts; None if neither."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        for part in content
    ):
        return "".join(part["text"] for part in content)
    return None


def chat_messages(messages: Any) -> tuple[list[dict[str, str]], str | None]:
    """(messages as {role, content} strings, None), or ([], what is wrong with them)."""
    if not isinstance(messages, list) or not messages:
        return [], "'messages' is not a non-empty list"
    checked = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return [], f"messages[{index}] is not an object"
        role = message.get("role")
        if role not in CHAT_ROLES:
            return [], f"messages[{index}].role is {role!r}, not one of {list(CHAT_ROLES)}"
        content = message_content(message.get("content"))
        if content is None:
            return [], f"messages[{index}].content is not text"
        checked.append({"role": role, "content": content})
    return checked, None


def chat_to_record(row: dict[str, Any], source: SourceConfig, uri: str) -> RawRecord:
    """A conversation: the turns before the last assistant turn, as `role: content` lines, are
    the text; that assistant turn is the response; `fields.messages` keeps every turn."""
    messages, problem = chat_messages(row["messages"])
    if problem:
        return quarantined(source.name, uri, "source.malformed_messages", f"{uri}: {problem}")
    last_answer = max(
        (index for index, message in enumerate(messages) if message["role"] == "assistant"),
        default=None,
    )
    if last_answer is None:
        return quarantined(
            source.name, uri, "source.no_assistant_turn", f"{uri}: no assistant message"
        )
    response = messages[last_answer]["content"].strip()
    prompt_turns = [m for m in messages[:last_answer] if m["content"].strip()]
    if not response or not any(m["role"] != "system" for m in prompt_turns):
        missing = "an empty last assistant message" if not response else "no turn before it"
        return quarantined(
            source.name,
            uri,
            "source.empty_text",
            f"{uri}: messages[{last_answer}] is the last assistant turn, with {missing}",
        )
    text = "\n".join(f"{m['role']}: {m['content'].strip()}" for m in prompt_turns)
    too_large = _too_large(text, source, uri)
    if too_large:
        return too_large
    return RawRecord(
        record_id=_record_id(row, source, uri),
        source=source.name,
        uri=uri,
        text=text,
        response=response,
        fields={"messages": messages, "task": "chat"},
    )


def instruction_to_record(row: Any, source: SourceConfig, uri: str) -> RawRecord:
    """An Alpaca-style record, or a chat record if the row has `messages`."""
    if not isinstance(row, dict):
        return quarantined(source.name, uri, "source.not_an_object", f"{uri}: expected an object")
    if "messages" in row:
        return chat_to_record(row, source, uri)
    missing = [key for key in ("instruction", "output") if not str(row.get(key) or "").strip()]
    if missing:
        return quarantined(
            source.name, uri, "source.missing_field", f"{uri}: empty or missing {missing}"
        )
    instruction = str(row["instruction"]).strip()
    extra_input = str(row.get("input") or "").strip()
    text = f"{instruction}\n\n{extra_input}" if extra_input else instruction
    too_large = _too_large(text, source, uri)
    if too_large:
        return too_large
    return RawRecord(
        record_id=_record_id(row, source, uri),
        source=source.name,
        uri=uri,
        text=text,
        response=str(row["output"]).strip(),
        fields={"instruction": instruction, "input": extra_input, "task": "instruction"},
    )


def iter_instructions(source: SourceConfig, pattern: str) -> Iterator[RawRecord]:
    """Every instruction record of the matching files (JSON arrays or JSONL)."""
    for path in matching_files(pattern):
        shown = display_path(path, pattern)
        if path.suffix.lower() == ".json":
            try:
                rows = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                yield (
                    quarantined(source.name, shown, "source.malformed_json", f"{shown}: {error}")
                )
                continue
            if not isinstance(rows, list):
                yield (
                    quarantined(
                        source.name,
                        shown,
                        "source.not_an_array",
                        f"{shown}: an instruction file is a JSON array of objects",
                    )
                )
                continue
            for index, row in enumerate(rows):
                yield instruction_to_record(row, source, f"{shown}#{index}")
            continue
        for uri, row, problem, detail in jsonl_rows(path, shown):
            if problem:
                yield quarantined(source.name, uri, problem, detail or uri)
            else:
                yield instruction_to_record(row, source, uri)


def read_instructions(source: SourceConfig, pattern: str) -> list[RawRecord]:
    return list(iter_instructions(source, pattern))
