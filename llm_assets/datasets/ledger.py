"""The dataset ledger: where every cleaned record and every pair went, and why.

One row per pair (kept in train or validation, held out in the golden set, or dropped with a
`dataset.*` reason) and one row per cleaned record that yielded no pair at all.
"""

from __future__ import annotations

import pandas as pd

DATASET_LEDGER_COLUMNS = [
    "pair_id",
    "record_id",
    "source",
    "task",
    "action",
    "split",
    "reason",
    "detail",
    "duplicate_of",
    "token_count",
]
DATASET_ACTIONS = ("kept", "held_out", "dropped")


def _rows(frame: pd.DataFrame, **values: object) -> pd.DataFrame:
    rows = pd.DataFrame(
        {
            column: frame[column].to_numpy() if column in frame else None
            for column in ("pair_id", "record_id", "source", "task", "token_count")
        },
        index=range(len(frame)),
    )
    for column, value in values.items():
        rows[column] = value.to_numpy() if isinstance(value, pd.Series) else value
    return rows.reindex(columns=DATASET_LEDGER_COLUMNS)


def dataset_ledger(
    skipped_records: pd.DataFrame,
    golden: pd.DataFrame,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    too_long: pd.DataFrame,
    leaked: pd.DataFrame,
    max_length: int,
) -> pd.DataFrame:
    """The ledger rows, records without pairs first, then pairs by outcome."""
    parts = [
        _rows(
            skipped_records,
            action="dropped",
            reason=skipped_records["reason"],
            detail=skipped_records["detail"],
        ),
        _rows(golden, action="held_out", split="golden"),
        _rows(train, action="kept", split="train"),
        _rows(validation, action="kept", split="validation"),
        _rows(
            too_long,
            action="dropped",
            reason="dataset.too_long",
            detail=[
                f"pair {pair_id} ({source}/{record_id}): {tokens} tokens > "
                f"max_length={max_length}; dropped whole, never truncated"
                for pair_id, source, record_id, tokens in zip(
                    too_long["pair_id"],
                    too_long["source"],
                    too_long["record_id"],
                    too_long["token_count"],
                    strict=True,
                )
            ],
        ),
        _rows(
            leaked,
            action="dropped",
            reason="dataset.golden_leak",
            duplicate_of=leaked["leaked_with"],
            detail=[
                f"{match} of golden pair {other} (similarity {similarity})"
                for match, other, similarity in zip(
                    leaked["match"], leaked["leaked_with"], leaked["similarity"], strict=True
                )
            ],
        ),
    ]
    present = [part for part in parts if len(part)]
    ledger = (
        pd.concat(present, ignore_index=True)
        if present
        else pd.DataFrame(columns=DATASET_LEDGER_COLUMNS)
    )
    counts = pd.to_numeric(ledger["token_count"], errors="coerce").astype("Int64")
    return ledger.drop(columns=["token_count"]).astype("string").assign(token_count=counts)


def dataset_ledger_discrepancies(
    ledger: pd.DataFrame,
    corpus: pd.DataFrame,
    pairs: pd.DataFrame,
    golden: pd.DataFrame,
    split_rows: dict[str, int],
) -> list[str]:
    """What keeps the ledger from accounting for every record and pair exactly once, and from
    agreeing with the stored splits; [] if nothing."""
    problems = []
    pair_rows = ledger[ledger["pair_id"].notna()]
    repeated = pair_rows[pair_rows["pair_id"].duplicated(keep=False)]
    if len(repeated):
        problems.append(f"{len(repeated)} ledger rows share a pair_id, e.g. {repeated.iloc[0, 0]}")
    missing = set(pairs["pair_id"]) - set(pair_rows["pair_id"])
    if missing:
        problems.append(f"{len(missing)} pairs of sft_pairs have no ledger row")
    held_out = set(pair_rows.loc[pair_rows["action"] == "held_out", "pair_id"])
    if held_out != set(golden["pair_id"]):
        problems.append(
            f"held_out rows ({len(held_out)}) are not the golden set ({len(golden)} rows)"
        )
    for split, rows in split_rows.items():
        found = int(((ledger["action"] == "kept") & (ledger["split"] == split)).sum())
        if found != rows:
            problems.append(f"{split}: {rows} rows stored but {found} kept in the ledger")
    accounted = set(zip(ledger["source"].astype(str), ledger["record_id"].astype(str), strict=True))
    records = set(zip(corpus["source"].astype(str), corpus["record_id"].astype(str), strict=True))
    if records - accounted:
        example = sorted(records - accounted)[0]
        problems.append(
            f"{len(records - accounted)} cleaned records have no ledger row, e.g. {example}"
        )
    unknown = sorted(set(ledger["action"].dropna()) - set(DATASET_ACTIONS))
    if unknown or ledger["action"].isna().any():
        problems.append(f"actions outside {DATASET_ACTIONS}: {unknown or ['<null>']}")
    unexplained = ledger[(ledger["action"] == "dropped") & ledger["reason"].isna()]
    if len(unexplained):
        problems.append(f"{len(unexplained)} dropped rows have no reason")
    return problems


def dataset_ledger_summary(ledger: pd.DataFrame) -> pd.DataFrame:
    """Rows by action, split and reason, for people reading the asset in the UI."""
    return (
        ledger.fillna({"split": "-", "reason": "-"})
        .groupby(["action", "split", "reason"])
        .size()
        .rename("rows")
        .reset_index()
        .sort_values(["action", "rows"], ascending=[True, False])
    )
