import json

import pandas as pd

from llm_assets.datasets.sft import build_sft_pairs, markdown_sections
from llm_assets.datasets.splits import shared_pairs, split_golden, split_train_validation
from llm_assets.settings import DatasetConfig

DOC = """# Selective sync

Intro paragraph that is long enough to become a pair on its own, describing the feature well.

## Choosing folders

Open Preferences and untick the folders you do not want on this computer; they stay in the cloud.

## Tiny
short
"""


def test_markdown_sections_split_on_headings() -> None:
    sections = markdown_sections(DOC)
    assert [heading for heading, _ in sections] == ["Selective sync", "Choosing folders", "Tiny"]
    assert sections[1][1].startswith("Open Preferences")


def _corpus() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "record_id": "d.md",
                "source": "docs",
                "text": DOC,
                "response": None,
                "fields": json.dumps({"title": "Selective sync"}),
            },
            {
                "record_id": "T-1",
                "source": "tickets",
                "text": "Login loop\n\nIt keeps asking.",
                "response": "Clear the keychain entry.",
                "fields": "{}",
            },
        ]
    )


def test_build_sft_pairs_makes_chat_rows_from_answers_and_sections() -> None:
    pairs = build_sft_pairs(_corpus(), DatasetConfig(system_prompt="Be helpful."))
    assert list(pairs["task"]) == ["doc_section", "doc_section", "support_answer"]
    ticket = pairs.iloc[2]
    assert [m["role"] for m in ticket["messages"]] == ["system", "user", "assistant"]
    assert ticket["messages"][-1]["content"] == "Clear the keychain entry."
    assert pairs["pair_id"].is_unique


def _pairs(n: int) -> pd.DataFrame:
    rows = []
    for i in range(n):
        source = "docs" if i % 3 == 0 else "tickets"
        rows.append(
            {
                "pair_id": str(i),
                "source": source,
                "task": source,
                "instruction": f"q{i}",
                "input": "",
                "output": f"answer {i}",
            }
        )
    # Two tickets with the same answer must stay in one split.
    rows[1]["output"] = rows[2]["output"] = "same answer"
    return pd.DataFrame(rows)


def test_golden_split_is_stratified_and_leak_free() -> None:
    pairs = _pairs(90)
    golden, rest = split_golden(pairs, size=30, seed=1)
    assert 28 <= len(golden) <= 31
    assert abs((golden["source"] == "docs").mean() - 1 / 3) < 0.1
    assert shared_pairs(golden, rest).empty
    assert len(golden) + len(rest) == len(pairs)
    train, validation = split_train_validation(rest, 0.2, seed=1)
    assert shared_pairs(train, validation).empty
    assert abs(len(validation) - 0.2 * len(rest)) <= 2


def test_shared_pairs_finds_a_leak() -> None:
    pairs = _pairs(10)
    assert list(shared_pairs(pairs.iloc[[1]], pairs.iloc[[2]])["pair_id"]) == ["1"]
