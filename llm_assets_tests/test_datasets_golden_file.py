import json
from pathlib import Path

import pandas as pd
import pytest

from llm_assets.datasets.golden_file import (
    GoldenFileError,
    combine_golden,
    golden_file_digest,
    read_golden_file,
)
from llm_assets.datasets.sft import PAIR_COLUMNS


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def test_golden_file_rows_become_pairs(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "golden.jsonl",
        [
            {"instruction": "How long is history kept on Pro?", "output": "180 days."},
            {
                "messages": [
                    {"role": "user", "content": "Sync is stuck."},
                    {"role": "assistant", "content": "On which device?"},
                    {"role": "user", "content": "My phone."},
                    {"role": "assistant", "content": "Open the app and pull to refresh."},
                ],
                "task": "chat",
            },
        ],
    )
    golden = read_golden_file(path, system_prompt="Be brief.")
    assert list(golden.columns) == PAIR_COLUMNS
    assert list(golden["source"]) == ["golden_file", "golden_file"]
    assert list(golden["record_id"]) == ["golden.jsonl#L1", "golden.jsonl#L2"]
    assert list(golden["task"]) == ["golden", "chat"]
    assert golden.iloc[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    chat = golden.iloc[1]
    assert [m["role"] for m in chat["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert chat["instruction"] == "My phone." and chat["output"].startswith("Open the app")
    assert golden["pair_id"].is_unique


def test_bad_golden_line_names_file_line_and_format(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"instruction": "q", "output": "a"}, {"question": "q"}])
    with pytest.raises(GoldenFileError, match=r"g.jsonl:2: empty or missing \['instruction'"):
        read_golden_file(path, None)
    path.write_text('{"instruction": "q", "output": "a"}\n{not json\n')
    with pytest.raises(GoldenFileError, match="g.jsonl:2: not valid JSON"):
        read_golden_file(path, None)
    with pytest.raises(GoldenFileError, match="does not exist"):
        golden_file_digest(tmp_path / "missing.jsonl")


def test_golden_file_extends_or_replaces_the_sample(tmp_path: Path) -> None:
    from_file = read_golden_file(
        _write(tmp_path / "g.jsonl", [{"instruction": "q", "output": "a"}]), None
    )
    sampled = pd.DataFrame([{**from_file.iloc[0].to_dict(), "pair_id": "s1", "source": "faq"}])
    assert list(combine_golden(sampled, from_file, "extend")["pair_id"]) == [
        "s1",
        from_file.iloc[0]["pair_id"],
    ]
    assert list(combine_golden(sampled, from_file, "replace")["source"]) == ["golden_file"]
    assert combine_golden(sampled, None, "replace") is sampled
