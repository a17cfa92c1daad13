import pandas as pd

from llm_assets.datasets.leaks import LEAK_COLUMNS
from llm_assets.datasets.ledger import (
    dataset_ledger,
    dataset_ledger_discrepancies,
    dataset_ledger_summary,
)


def _pairs(ids: list[str], tokens: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pair_id": ids,
            "record_id": [f"r-{i}" for i in ids],
            "source": "tickets",
            "task": "support_answer",
            "token_count": tokens,
        }
    )


def _ledger() -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    parts = {
        "golden": _pairs(["g"]),
        "train": _pairs(["a", "b"]),
        "validation": _pairs(["c"]),
        "too_long": _pairs(["d"], tokens=700),
        "leaked": pd.DataFrame(
            [["e", "r-e", "tickets", "support_answer", "g", "near answer", 0.91]],
            columns=LEAK_COLUMNS,
        ),
    }
    skipped = pd.DataFrame(
        [["empty.md", "docs", "dataset.no_sections", "docs/empty.md: no section"]],
        columns=["record_id", "source", "reason", "detail"],
    )
    ledger = dataset_ledger(
        skipped,
        parts["golden"],
        parts["train"],
        parts["validation"],
        parts["too_long"],
        parts["leaked"],
        max_length=512,
    )
    return ledger, parts


def test_ledger_names_every_pair_and_why_it_left() -> None:
    ledger, _ = _ledger()
    by_pair = ledger.set_index("pair_id", drop=False)
    assert by_pair.loc["d", "reason"] == "dataset.too_long"
    assert "700 tokens > max_length=512" in by_pair.loc["d", "detail"]
    assert "never truncated" in by_pair.loc["d", "detail"]
    assert by_pair.loc["d", "token_count"] == 700
    assert by_pair.loc["e", "reason"] == "dataset.golden_leak"
    assert by_pair.loc["e", "duplicate_of"] == "g"
    assert by_pair.loc["g", "action"] == "held_out"
    record_row = ledger[ledger["pair_id"].isna()].iloc[0]
    assert (record_row["record_id"], record_row["reason"]) == ("empty.md", "dataset.no_sections")
    summary = dataset_ledger_summary(ledger)
    assert summary.set_index(["action", "split"]).loc[("kept", "train"), "rows"] == 2


def test_discrepancies_catch_an_unaccounted_pair_and_record() -> None:
    ledger, parts = _ledger()
    pairs = pd.concat([parts[k] for k in ("train", "validation", "too_long", "leaked")])
    pairs = pd.concat([pairs, parts["golden"]], ignore_index=True)[["pair_id", "source"]]
    pairs["record_id"] = "r-" + pairs["pair_id"]
    corpus = pd.concat(
        [
            pairs[["source", "record_id"]],
            pd.DataFrame([{"source": "docs", "record_id": "empty.md"}]),
        ]
    )
    sizes = {"train": 2, "validation": 1}
    assert dataset_ledger_discrepancies(ledger, corpus, pairs, parts["golden"], sizes) == []

    lost = pd.concat([pairs, pd.DataFrame([{"pair_id": "z", "source": "t", "record_id": "r"}])])
    more = pd.concat([corpus, pd.DataFrame([{"source": "docs", "record_id": "new.md"}])])
    problems = dataset_ledger_discrepancies(
        ledger, more, lost, parts["golden"], {"train": 3, "validation": 1}
    )
    assert problems == [
        "1 pairs of sft_pairs have no ledger row",
        "train: 3 rows stored but 2 kept in the ledger",
        "1 cleaned records have no ledger row, e.g. ('docs', 'new.md')",
    ]
