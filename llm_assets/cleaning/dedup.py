"""Duplicate removal across all sources: the first occurrence is kept, later ones name it."""

from __future__ import annotations

import pandas as pd

from llm_assets.cleaning.normalize import dedup_key


def mark_exact_duplicates(records: pd.DataFrame) -> pd.Series:
    """For each record, '<source>/<record_id>' of the earlier record it repeats, else <NA>."""
    keys = [
        dedup_key(text, response)
        for text, response in zip(records["text"], records["response"], strict=True)
    ]
    first_of: dict[str, str] = {}
    duplicate_of: list[str | None] = []
    for key, source, record_id in zip(keys, records["source"], records["record_id"], strict=True):
        if key in first_of:
            duplicate_of.append(first_of[key])
        else:
            first_of[key] = f"{source}/{record_id}"
            duplicate_of.append(None)
    return pd.Series(duplicate_of, index=records.index, dtype="string")
