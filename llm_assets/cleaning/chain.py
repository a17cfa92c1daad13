"""The cleaning chain: raw records in; a cleaned corpus and a ledger out, none unaccounted for."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from llm_assets.cleaning.dedup import mark_exact_duplicates
from llm_assets.cleaning.ledger import LEDGER_COLUMNS, ledger_rows
from llm_assets.cleaning.normalize import dedup_key, normalize_text
from llm_assets.cleaning.pii import redact_pii
from llm_assets.settings import CleaningConfig

CORPUS_COLUMNS = [
    "record_id",
    "source",
    "text",
    "response",
    "uri",
    "content_hash",
    "fields",
    "pii_redactions",
]


@dataclass
class CleaningResult:
    corpus: pd.DataFrame
    ledger: pd.DataFrame
    stage_counts: list[dict[str, object]] = field(default_factory=list)
    pii_counts: Counter[str] = field(default_factory=Counter)


def _map_optional(values: pd.Series, function) -> pd.Series:  # type: ignore[no-untyped-def]
    return values.map(lambda value: function(value) if isinstance(value, str) else value)


def clean_corpus(raw: pd.DataFrame, config: CleaningConfig) -> CleaningResult:
    """Run every enabled stage over the raw records of all sources, in order.

    Stages: quarantine unreadable records, normalize, redact PII, drop too-short texts,
    drop exact duplicates. Each record leaves exactly one ledger row.
    """
    ledger_parts: list[pd.DataFrame] = []
    stage_counts: list[dict[str, object]] = []

    def record_stage(stage: str, before: int, after: int) -> None:
        stage_counts.append({"stage": stage, "in": before, "out": after, "removed": before - after})

    unreadable = raw["read_error"].notna()
    ledger_parts.append(
        ledger_rows(
            raw[unreadable],
            "quarantined",
            raw.loc[unreadable, "read_error"],
            detail=raw.loc[unreadable, "error_detail"],
        )
    )
    records = raw[~unreadable].copy()
    record_stage("source.readable", len(raw), len(records))

    if config.normalize_unicode:
        records["text"] = _map_optional(records["text"], normalize_text)
        records["response"] = _map_optional(records["response"], normalize_text)
        record_stage("normalize", len(records), len(records))

    pii_counts: Counter[str] = Counter()
    redactions = pd.Series(0, index=records.index, dtype="int64")
    if config.redact_pii:
        # `fields` (provenance such as a customer's email) is JSON text; placeholders keep it valid.
        for column in ("text", "response", "fields"):
            redacted = []
            for index, value in records[column].items():
                if not isinstance(value, str):
                    redacted.append(value)
                    continue
                clean, counts = redact_pii(value, config.pii_entities)
                pii_counts.update(counts)
                redactions[index] += sum(counts.values())
                redacted.append(clean)
            records[column] = redacted
        record_stage("pii", len(records), len(records))
    records["pii_redactions"] = redactions

    too_short = records["text"].str.len() < config.min_chars
    ledger_parts.append(
        ledger_rows(
            records[too_short],
            "dropped",
            "quality.too_short",
            detail=f"fewer than min_chars={config.min_chars} characters after cleaning",
        )
    )
    before = len(records)
    records = records[~too_short]
    record_stage("quality.min_chars", before, len(records))

    if config.exact_dedup:
        duplicate_of = mark_exact_duplicates(records)
        is_duplicate = duplicate_of.notna()
        ledger_parts.append(
            ledger_rows(
                records[is_duplicate],
                "dropped",
                "dedup.exact",
                detail="same text as an earlier record after normalization",
                duplicate_of=duplicate_of[is_duplicate],
            )
        )
        before = len(records)
        records = records[~is_duplicate]
        record_stage("dedup.exact", before, len(records))

    ledger_parts.append(ledger_rows(records, "kept", None))
    ledger = pd.concat(ledger_parts, ignore_index=True)[LEDGER_COLUMNS]

    records["content_hash"] = [
        dedup_key(text, response)
        for text, response in zip(records["text"], records["response"], strict=True)
    ]
    corpus = records[CORPUS_COLUMNS].reset_index(drop=True)
    return CleaningResult(corpus, ledger, stage_counts, pii_counts)
