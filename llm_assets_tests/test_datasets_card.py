"""The exported dataset folder: JSONL splits, the chat template and a dataset card that the
`datasets` library itself reads back."""

from pathlib import Path

import pandas as pd
import yaml

from llm_assets.datasets.card import (
    CardFacts,
    render_dataset_card,
    size_category,
    write_dataset_export,
)
from llm_assets.datasets.chat_template import DEFAULT_CHAT_TEMPLATE, to_messages
from llm_assets.datasets.lengths import length_stats


def _split(n: int, task: str) -> pd.DataFrame:
    rows = []
    for i in range(n):
        instruction, output = f"Question {i} about sync?", f"Answer {i}: restart the client."
        rows.append(
            {
                "pair_id": f"{task}{i}",
                "record_id": f"r{i}",
                "source": "tickets",
                "task": task,
                "section": "",
                "instruction": instruction,
                "input": "",
                "output": output,
                "messages": to_messages(instruction, output, system_prompt="Be brief."),
                "token_count": 20 + i,
            }
        )
    return pd.DataFrame(rows)


def _facts(splits: dict[str, pd.DataFrame]) -> CardFacts:
    return CardFacts(
        base_model="llm-assets/tiny-llama",
        max_length=64,
        chat_template=DEFAULT_CHAT_TEMPLATE,
        chat_template_origin="default",
        languages=["en"],
        system_prompt="Be brief.",
        teacher_model=None,
        length_stats=length_stats({k: v["token_count"] for k, v in splits.items()}, 64),
        ledger_summary=pd.DataFrame(
            [{"action": "dropped", "split": "-", "reason": "dataset.too_long", "rows": 2}]
        ),
    )


def test_card_has_yaml_metadata_and_says_what_was_left_out() -> None:
    splits = {"train": _split(5, "a"), "validation": _split(2, "a"), "golden": _split(1, "g")}
    card = render_dataset_card(splits, _facts(splits))
    assert card.startswith("---\n")
    header, body = card[4:].split("\n---\n", 1)
    metadata = yaml.safe_load(header)
    assert metadata["configs"][0]["data_files"][2] == {"split": "golden", "path": "golden.jsonl"}
    assert [s["num_examples"] for s in metadata["dataset_info"]["splits"]] == [5, 2, 1]
    assert metadata["size_categories"] == ["n<1K"]
    features = {f["name"]: f for f in metadata["dataset_info"]["features"]}
    assert features["token_count"]["dtype"] == "int64"
    assert features["messages"]["list"][0] == {"name": "role", "dtype": "string"}
    assert "dataset.too_long" in body and "never train on it" in body
    assert DEFAULT_CHAT_TEMPLATE in body


def test_export_round_trips_through_load_dataset(tmp_path: Path) -> None:
    from datasets import load_dataset

    splits = {"train": _split(5, "a"), "validation": _split(2, "a"), "golden": _split(1, "g")}
    paths = write_dataset_export(
        tmp_path, splits, render_dataset_card(splits, _facts(splits)), DEFAULT_CHAT_TEMPLATE
    )
    assert paths["chat_template"].read_text() == DEFAULT_CHAT_TEMPLATE
    loaded = load_dataset(str(tmp_path))
    assert {name: len(split) for name, split in loaded.items()} == {
        "train": 5,
        "validation": 2,
        "golden": 1,
    }
    row = loaded["train"][1]
    assert row["messages"][-1] == {"role": "assistant", "content": "Answer 1: restart the client."}
    assert row["token_count"] == 21


def test_size_categories_follow_the_hub_buckets() -> None:
    assert [size_category(n) for n in (0, 999, 1_000, 250_000)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "100K<n<1M",
    ]
