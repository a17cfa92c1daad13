"""The cleaning chain: raw records in; a cleaned corpus and a ledger out, none unaccounted for.

Stages, in order: forget requests, quarantine of unreadable records, noise removal,
normalization, PII redaction, quality filters, minimum length, exact dedup, near-duplicate
dedup. A stage either rewrites texts or removes records; every removal leaves a ledger row with
a `stage.code` reason, and every record still standing at the end a `kept` row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from llm_assets.cleaning.dedup import (
    NearDuplicateIndex,
    mark_exact_duplicates,
    mark_near_duplicates,
)
from llm_assets.cleaning.ledger import LEDGER_COLUMNS, ledger_rows
from llm_assets.cleaning.noise import remove_noise
from llm_assets.cleaning.normalize import (
    apply_terminology,
    dedup_key,
    expand_contractions,
    normalize_text,
)
from llm_assets.cleaning.pii import redact_pii_batch
from llm_assets.cleaning.quality import quality_reasons
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
TEXT_COLUMNS = ("text", "response")


@dataclass
class CleaningResult:
    corpus: pd.DataFrame
    ledger: pd.DataFrame
    stage_counts: list[dict[str, object]] = field(default_factory=list)
    pii_counts: Counter[str] = field(default_factory=Counter)
    rewrites: dict[str, int] = field(default_factory=dict)
    near_duplicate_index: NearDuplicateIndex | None = None


class _Run:
    """Book-keeping shared by the stages: the ledger so far and the per-stage counts."""

    def __init__(self) -> None:
        self.ledger_parts: list[pd.DataFrame] = []
        self.stage_counts: list[dict[str, object]] = []

    def remove(
        self,
        records: pd.DataFrame,
        drop: pd.Series,
        stage: str,
        action: str,
        reason: pd.Series | str,
        detail: pd.Series | str | None = None,
        duplicate_of: pd.Series | None = None,
    ) -> pd.DataFrame:
        """Records without the `drop` ones, which go to the ledger with `reason` (a code, or one
        per record as a Series aligned with `records`, like `detail` and `duplicate_of`)."""

        def dropped(value: pd.Series | str | None) -> pd.Series | str | None:
            return value[drop] if isinstance(value, pd.Series) else value

        self.ledger_parts.append(
            ledger_rows(
                records[drop],
                action,
                dropped(reason),
                detail=dropped(detail),
                duplicate_of=duplicate_of[drop] if duplicate_of is not None else None,
            )
        )
        self.count(stage, len(records), len(records) - int(drop.sum()))
        return records[~drop]

    def count(self, stage: str, before: int, after: int, changed: int | None = None) -> None:
        row: dict[str, object] = {"stage": stage, "in": before, "out": after}
        row["removed"] = before - after
        row["texts_changed"] = changed if changed is not None else 0
        self.stage_counts.append(row)


def _rewrite(records: pd.DataFrame, rewrite: Callable[[str], str]) -> int:
    """Apply `rewrite` to every present text of TEXT_COLUMNS in place; how many records changed."""
    changed = pd.Series(False, index=records.index)
    for column in TEXT_COLUMNS:
        before = records[column]
        after = before.map(lambda value: rewrite(value) if isinstance(value, str) else value)
        changed |= before.fillna("") != after.fillna("")
        records[column] = after
    return int(changed.sum())


def _redact_columns(
    records: pd.DataFrame, config: CleaningConfig, pii_counts: Counter[str], redactions: pd.Series
) -> int:
    """Redact TEXT_COLUMNS and `fields` in place, in one batch so pseudonyms agree across them;
    `fields` (provenance such as a customer's email) is JSON text, and placeholders keep it valid.
    Returns how many records changed."""
    columns = (*TEXT_COLUMNS, "fields")
    cells = [
        (column, index, value)
        for column in columns
        for index, value in records[column].items()
        if isinstance(value, str) and value not in ("", "{}")
    ]
    results = redact_pii_batch(
        [value for _, _, value in cells],
        config.pii_entities,
        config.pii_pseudonymize,
        allow=config.pii_allow_list,
    )
    for (column, index, _), (clean, counts) in zip(cells, results, strict=True):
        records.at[index, column] = clean
        pii_counts.update(counts)
        redactions[index] += sum(counts.values())
    return int((redactions > 0).sum())


def _normalizer(config: CleaningConfig) -> Callable[[str], str]:
    settings = config.normalize

    def normalize(text: str) -> str:
        text = normalize_text(text, settings.repair_unicode)
        if settings.expand_contractions:
            text = expand_contractions(text)
        return apply_terminology(text, settings.terminology)

    return normalize


def read_forget_requests(lines: list[str]) -> set[str]:
    """Ids from a forget file: '<source>/<record_id>' or a bare record id; '#' starts a comment."""
    ids = set()
    for line in lines:
        entry = line.split("#", 1)[0].strip()
        if entry:
            ids.add(entry)
    return ids


def clean_corpus(
    raw: pd.DataFrame,
    config: CleaningConfig,
    forget: set[str] | None = None,
    near_duplicate_index: NearDuplicateIndex | None = None,
    code_sources: set[str] | None = None,
) -> CleaningResult:
    """Run every enabled stage over the raw records of all sources, in order.

    Records of `code_sources` (git repositories) skip noise removal and the prose quality
    filters, which would mangle or drop source files.
    `forget` holds ids to remove ('<source>/<record_id>' or a bare record id);
    `near_duplicate_index` (from an earlier run) makes its records count as earlier.
    """
    run = _Run()
    rewrites: dict[str, int] = {}
    records = raw.copy()

    if forget:
        keys = records["source"].astype(str) + "/" + records["record_id"].astype(str)
        forgotten = keys.isin(forget) | records["record_id"].astype(str).isin(forget)
        records = run.remove(
            records,
            forgotten,
            "forget",
            "dropped",
            "forget.request",
            detail="listed in the profile's forget_file",
        )

    unreadable = records["read_error"].notna()
    records = run.remove(
        records,
        unreadable,
        "source.readable",
        "quarantined",
        records["read_error"],
        detail=records["error_detail"],
    )
    records = records.copy()

    # Source code is not prose: no signature/markup stripping, no prose statistics.
    prose = ~records["source"].isin(code_sources or set())
    if config.noise.steps:
        changed = pd.Series(False, index=records.index)
        for column in TEXT_COLUMNS:
            cleaned, counts = remove_noise(
                records[prose],
                column,
                config.noise.steps,
                config.noise.boilerplate_min_fraction,
                config.noise.boilerplate_min_documents,
            )
            changed[prose] |= records.loc[prose, column].fillna("") != cleaned.fillna("")
            records.loc[prose, column] = cleaned
            for step, count in counts.items():
                rewrites[step] = rewrites.get(step, 0) + count
        run.count("noise", len(records), len(records), int(changed.sum()))

    run.count("normalize", len(records), len(records), _rewrite(records, _normalizer(config)))

    pii_counts: Counter[str] = Counter()
    redactions = pd.Series(0, index=records.index, dtype="int64")
    if config.redact_pii:
        changed = _redact_columns(records, config, pii_counts, redactions)
        run.count("pii", len(records), len(records), changed)
    records["pii_redactions"] = redactions

    if config.quality.enabled:
        prose = ~records["source"].isin(code_sources or set())
        reasons = (
            records["text"]
            .where(prose, None)
            .map(
                lambda text: quality_reasons(text, config.quality) if isinstance(text, str) else []
            )
        )
        failing = reasons.map(bool)
        records = run.remove(
            records,
            failing,
            "quality",
            "dropped",
            reasons.map(lambda found: found[0] if found else None),
            detail=reasons.map(lambda found: "failed: " + ", ".join(found) if found else None),
        )

    too_short = records["text"].str.len() < config.min_chars
    records = run.remove(
        records,
        too_short,
        "quality.min_chars",
        "dropped",
        "quality.too_short",
        detail=f"fewer than min_chars={config.min_chars} characters after cleaning",
    )

    if config.exact_dedup:
        duplicate_of = mark_exact_duplicates(records)
        records = run.remove(
            records,
            duplicate_of.notna(),
            "dedup.exact",
            "dropped",
            "dedup.exact",
            detail="same text as an earlier record after normalization",
            duplicate_of=duplicate_of,
        )

    index = near_duplicate_index
    if config.near_dedup.enabled:
        near = config.near_dedup
        if index is not None:
            # Signatures of records gone from the sources, forgotten or filtered out this run
            # must not linger: they would mark new records as copies of nothing in the corpus.
            present = records["source"].astype(str) + "/" + records["record_id"].astype(str)
            index.keep_only(set(present))
        duplicate_of, index = mark_near_duplicates(
            records, near.threshold, near.num_perm, near.shingle_size, index=index
        )
        records = run.remove(
            records,
            duplicate_of.notna(),
            "dedup.near",
            "dropped",
            "dedup.near",
            detail=f"estimated Jaccard >= {near.threshold} with an earlier record",
            duplicate_of=duplicate_of,
        )

    run.ledger_parts.append(ledger_rows(records, "kept", None))
    ledger = pd.concat(run.ledger_parts, ignore_index=True)[LEDGER_COLUMNS]
    records = records.copy()
    records["content_hash"] = [
        dedup_key(text, response)
        for text, response in zip(records["text"], records["response"], strict=True)
    ]
    corpus = records[CORPUS_COLUMNS].reset_index(drop=True)
    return CleaningResult(corpus, ledger, run.stage_counts, pii_counts, rewrites, index)
