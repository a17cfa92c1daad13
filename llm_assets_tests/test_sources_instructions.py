"""Chat-style records (`messages`) in an `instructions` source, beside Alpaca-style ones."""

import json
from pathlib import Path

from llm_assets.settings import SourceConfig
from llm_assets.sources.instructions import read_instructions
from llm_assets.sources.records import RawRecord


def read_lines(tmp_path: Path, rows: list[object]) -> list[RawRecord]:
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    source = SourceConfig(name="chats", kind="instructions", path=str(path))
    return read_instructions(source, str(path))


CONVERSATION = [
    {"role": "system", "content": "You are the support assistant."},
    {"role": "user", "content": "Sync is slow."},
    {"role": "assistant", "content": "Is LAN sync on?"},
    {"role": "user", "content": [{"type": "text", "text": "It is off."}]},
    {"role": "assistant", "content": "Turn it on in Preferences > Network."},
]


def test_chat_record_answers_the_last_assistant_turn(tmp_path: Path) -> None:
    (record,) = read_lines(tmp_path, [{"messages": CONVERSATION}])
    assert record.read_error is None
    assert record.text == (
        "system: You are the support assistant.\n"
        "user: Sync is slow.\n"
        "assistant: Is LAN sync on?\n"
        "user: It is off."
    )
    assert record.response == "Turn it on in Preferences > Network."
    assert record.fields["task"] == "chat"
    assert len(record.fields["messages"]) == 5
    assert record.fields["messages"][3] == {"role": "user", "content": "It is off."}


def test_malformed_conversations_are_quarantined_with_the_reason(tmp_path: Path) -> None:
    records = read_lines(
        tmp_path,
        [
            {"messages": "user: hi"},
            {"messages": []},
            {"messages": [{"role": "user", "content": "hi"}, "assistant: hello"]},
            {"messages": [{"role": "robot", "content": "beep"}]},
            {"messages": [{"role": "user", "content": {"image": "x.png"}}]},
            {"messages": [{"role": "user", "content": "Anyone there?"}]},
            {"messages": [{"role": "assistant", "content": "Hello!"}]},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]},
            {"instruction": "Summarize", "output": "Done."},
        ],
    )
    assert [record.read_error for record in records] == [
        "source.malformed_messages",
        "source.malformed_messages",
        "source.malformed_messages",
        "source.malformed_messages",
        "source.malformed_messages",
        "source.no_assistant_turn",
        "source.empty_text",
        "source.empty_text",
        None,
    ]
    assert "chats.jsonl#L3: messages[1] is not an object" == records[2].error_detail
    assert "'robot'" in str(records[3].error_detail)
    assert records[8].fields["task"] == "instruction"


def test_chat_records_in_a_json_array_keep_their_ids(tmp_path: Path) -> None:
    path = tmp_path / "chats.json"
    path.write_text(json.dumps([{"id": "c1", "messages": CONVERSATION}]))
    source = SourceConfig(name="chats", kind="instructions", path=str(path), id_field="id")
    (record,) = read_instructions(source, str(path))
    assert record.record_id == "c1"
    assert record.uri == "chats.json#0"
