"""The cleaning ledger: one final row per input record saying what became of it and why."""

from __future__ import annotations

import pandas as pd

LEDGER_COLUMNS = ["record_id", "source", "action", "reason", "detail", "duplicate_of"]
ACTIONS = ("kept", "dropped", "quarantined")


def ledger_rows(
    records: pd.DataFrame,
    action: str,
    reason: pd.Series | str | None,
    detail: pd.Series | str | None = None,
    duplicate_of: pd.Series | None = None,
) -> pd.DataFrame:
    """Ledger rows for `records`, all one action; `reason` is a `stage.code` (or one per row)."""
    if action not in ACTIONS:
        raise ValueError(f"ledger action must be one of {ACTIONS}, got {action!r}")
    rows = pd.DataFrame(
        {
            "record_id": records["record_id"].to_numpy(),
            "source": records["source"].to_numpy(),
            "action": action,
            "reason": reason.to_numpy() if isinstance(reason, pd.Series) else reason,
            "detail": detail.to_numpy() if isinstance(detail, pd.Series) else detail,
            "duplicate_of": duplicate_of.to_numpy() if duplicate_of is not None else None,
        },
        columns=LEDGER_COLUMNS,
    )
    return rows.astype("string")


def ledger_discrepancies(raw_counts: dict[str, int], ledger: pd.DataFrame) -> list[str]:
    """What keeps the ledger from accounting for every input record exactly once; [] if nothing."""
    problems = []
    repeated = ledger[ledger.duplicated(["source", "record_id"], keep=False)]
    if len(repeated):
        examples = repeated[["source", "record_id"]].drop_duplicates().head(5).to_dict("records")
        problems.append(f"{len(repeated)} ledger rows share a (source, record_id): {examples}")
    unknown_actions = sorted(set(ledger["action"].dropna()) - set(ACTIONS))
    if unknown_actions or ledger["action"].isna().any():
        problems.append(f"actions outside {ACTIONS}: {unknown_actions or ['<null>']}")
    per_source = ledger.groupby("source").size().to_dict()
    for source, expected in raw_counts.items():
        found = int(per_source.get(source, 0))
        if found != expected:
            problems.append(f"source '{source}': {expected} raw records but {found} ledger rows")
    for source in sorted(set(per_source) - set(raw_counts)):
        problems.append(f"ledger has rows for unknown source '{source}'")
    unexplained = ledger[(ledger["action"] != "kept") & ledger["reason"].isna()]
    if len(unexplained):
        problems.append(f"{len(unexplained)} dropped/quarantined rows have no reason")
    return problems
