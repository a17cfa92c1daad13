"""The cleaning chain: raw records in; a cleaned corpus and a ledger out, none unaccounted for.

Stages, in order: forget requests, quarantine of unreadable records, noise removal,
normalization, PII redaction, quality filters, minimum length, exact dedup, near-duplicate
dedup. A stage either rewrites texts or removes records; every removal leaves a ledger row with
a `stage.code` reason, and every record still standing at the end a `kept` row.

Records stream through in batches, so memory stays flat however large the input:

1. if boilerplate removal is on, a first pass counts repeated lines per source (bounded memory);
2. worker processes run the per-record stages (noise to minimum length) batch by batch and
   hash what dedup needs; the parent drops exact duplicates in input order and spills the
   survivors to a temporary Parquet file;
3. the parent prunes the near-duplicate index to the records present this run, then reads the
   spill back, drops near duplicates and writes the corpus.
"""

from __future__ import annotations

import secrets
import tempfile
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llm_assets.cleaning.dedup import (
    NearDuplicateIndex,
    assign_near_duplicates,
    check_index_settings,
    mark_exact_duplicates,
    record_keys,
    signatures_to_hash,
)
from llm_assets.cleaning.ledger import LEDGER_COLUMNS, ledger_rows
from llm_assets.cleaning.noise import (
    NOISE_STEPS,
    PER_TEXT_STEPS,
    FrequentLines,
    line_document_counts,
    remove_noise,
)
from llm_assets.cleaning.normalize import (
    apply_terminology,
    dedup_key,
    expand_contractions,
    normalize_text,
)
from llm_assets.cleaning.pii import redact_pii_batch
from llm_assets.cleaning.quality import quality_reasons
from llm_assets.settings import CleaningConfig
from llm_assets.sources.feedback import CURATION_PREFIX
from llm_assets.storage import StoredTable, TableWriter, string_schema

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
_SIGNATURE = "signature"


def corpus_schema() -> Any:
    import pyarrow as pa

    return string_schema(CORPUS_COLUMNS, pii_redactions=pa.int64())


def ledger_schema() -> Any:
    return string_schema(LEDGER_COLUMNS)


def _spill_schema() -> Any:
    import pyarrow as pa

    return string_schema(
        [*CORPUS_COLUMNS, _SIGNATURE], pii_redactions=pa.int64(), signature=pa.binary()
    )


@dataclass
class StageCounts:
    """In/out/removed/texts-changed per stage, summed over batches, in stage order."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def count(self, stage: str, before: int, after: int, changed: int = 0) -> None:
        row = self.rows.setdefault(
            stage, {"stage": stage, "in": 0, "out": 0, "removed": 0, "texts_changed": 0}
        )
        row["in"] += before
        row["out"] += after
        row["removed"] += before - after
        row["texts_changed"] += changed

    def merge(self, other: StageCounts) -> None:
        for row in other.rows.values():
            self.count(row["stage"], row["in"], row["out"], row["texts_changed"])

    def as_list(self) -> list[dict[str, Any]]:
        return list(self.rows.values())


@dataclass
class BatchResult:
    """What the per-record stages make of one batch."""

    survivors: pd.DataFrame  # CORPUS_COLUMNS plus the dedup key and MinHash signature
    ledger: pd.DataFrame
    stages: StageCounts
    pii_counts: Counter[str]
    rewrites: Counter[str]


@dataclass(frozen=True)
class RunContext:
    """What every batch of a run needs besides its records; sent to each worker once."""

    config: CleaningConfig
    forget: frozenset[str] = frozenset()
    code_sources: frozenset[str] = frozenset()
    # Sources of kind `documents`: judged by `config.documents_quality`, not `config.quality`.
    documents_sources: frozenset[str] = frozenset()
    # A key shared by all batches: the same value gets the same pseudonym across the corpus.
    pseudonym_key: bytes = b""
    # Records an earlier run indexed for near-dedup (key -> content digest): not hashed again.
    indexed: dict[str, str] = field(default_factory=dict)


def _remove(
    records: pd.DataFrame,
    drop: pd.Series,
    stage: str,
    action: str,
    reason: pd.Series | str,
    ledger: list[pd.DataFrame],
    stages: StageCounts,
    detail: pd.Series | str | None = None,
    duplicate_of: pd.Series | None = None,
) -> pd.DataFrame:
    """Records without the `drop` ones, which go to `ledger` with `reason` (a code, or one per
    record as a Series aligned with `records`, like `detail` and `duplicate_of`)."""

    # An empty batch maps to an empty Series of the text's dtype, whose sum would be ''.
    drop = drop.astype(bool)

    def dropped(value: pd.Series | str | None) -> pd.Series | str | None:
        return value[drop] if isinstance(value, pd.Series) else value

    if drop.any():
        ledger.append(
            ledger_rows(
                records[drop],
                action,
                dropped(reason),
                detail=dropped(detail),
                duplicate_of=duplicate_of[drop] if duplicate_of is not None else None,
            )
        )
    stages.count(stage, len(records), len(records) - int(drop.sum()))
    return records[~drop]


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
    records: pd.DataFrame, context: RunContext, pii_counts: Counter[str], redactions: pd.Series
) -> int:
    """Redact TEXT_COLUMNS and `fields` in place; `fields` (provenance such as a customer's
    email) is JSON text, and placeholders keep it valid. Returns how many records changed."""
    config = context.config
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
        key=context.pseudonym_key or None,
        allow=config.pii_allow_list,
        stable_pseudonyms=True,
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


def _readable(
    batch: pd.DataFrame, context: RunContext, ledger: list[pd.DataFrame], stages: StageCounts
) -> pd.DataFrame:
    """The batch without forgotten and unreadable records (they go to the ledger)."""
    records = batch
    if context.forget:
        keys = records["source"].astype(str) + "/" + records["record_id"].astype(str)
        forgotten = keys.isin(context.forget) | records["record_id"].astype(str).isin(
            context.forget
        )
        records = _remove(
            records,
            forgotten,
            "forget",
            "dropped",
            "forget.request",
            ledger,
            stages,
            detail="listed in the profile's forget_file",
        )
    # Curated-out feedback (see sources/feedback.py) is a decision, not a broken record.
    curated_out = records["read_error"].fillna("").str.startswith(CURATION_PREFIX)
    if curated_out.any():
        records = _remove(
            records,
            curated_out,
            "feedback.curation",
            "dropped",
            records["read_error"],
            ledger,
            stages,
            detail=records["error_detail"],
        )
    unreadable = records["read_error"].notna()
    return _remove(
        records,
        unreadable,
        "source.readable",
        "quarantined",
        records["read_error"],
        ledger,
        stages,
        detail=records["error_detail"],
    ).copy()


def _prose(records: pd.DataFrame, context: RunContext) -> pd.Series:
    # Source code is not prose: no signature/markup stripping, no prose statistics.
    return ~records["source"].isin(context.code_sources)


def count_repeated_lines(
    batch: pd.DataFrame, context: RunContext
) -> dict[tuple[str, str], tuple[int, Counter[str]]]:
    """First pass of boilerplate removal, per (column, source): how many texts the batch has,
    and in how many of them each line appears, after the noise steps that run before it."""
    steps = [step for step in context.config.noise.steps if step in PER_TEXT_STEPS]
    records = _readable(batch, context, [], StageCounts())
    records = records[_prose(records, context)]
    counts: dict[tuple[str, str], tuple[int, Counter[str]]] = {}
    for column in TEXT_COLUMNS:
        for source, texts in records.groupby("source", sort=False)[column]:
            present = [text for text in texts if isinstance(text, str)]
            for step in NOISE_STEPS:
                if step in steps:
                    present = [PER_TEXT_STEPS[step](text) for text in present]
            counts[(column, str(source))] = (len(present), line_document_counts(present))
    return counts


def clean_batch(
    batch: pd.DataFrame, context: RunContext, boilerplate: dict[tuple[str, str], set[str]]
) -> BatchResult:
    """The per-record stages over one batch (forget to minimum length), plus what dedup needs:
    each survivor's content key and, for near-dedup, its MinHash signature.

    `boilerplate` holds the repeated lines of each (column, source), found over the whole input
    by `count_repeated_lines`; records of `context.code_sources` skip noise removal and the prose
    quality filters, which would mangle or drop source files.
    """
    config = context.config
    ledger: list[pd.DataFrame] = []
    stages = StageCounts()
    rewrites: Counter[str] = Counter()
    records = _readable(batch, context, ledger, stages)

    prose = _prose(records, context)
    if config.noise.steps:
        changed = pd.Series(False, index=records.index)
        for column in TEXT_COLUMNS:
            cleaned, counts = remove_noise(
                records[prose],
                column,
                config.noise.steps,
                config.noise.boilerplate_min_fraction,
                config.noise.boilerplate_min_documents,
                boilerplate={
                    source: lines for (col, source), lines in boilerplate.items() if col == column
                },
            )
            changed[prose] |= records.loc[prose, column].fillna("") != cleaned.fillna("")
            records.loc[prose, column] = cleaned
            rewrites.update(counts)
        stages.count("noise", len(records), len(records), int(changed.sum()))

    stages.count("normalize", len(records), len(records), _rewrite(records, _normalizer(config)))

    pii_counts: Counter[str] = Counter()
    redactions = pd.Series(0, index=records.index, dtype="int64")
    if config.redact_pii:
        changed_count = _redact_columns(records, context, pii_counts, redactions)
        stages.count("pii", len(records), len(records), changed_count)
    records["pii_redactions"] = redactions

    if config.quality.enabled or config.documents_quality.enabled:
        prose = _prose(records, context)
        documents = records["source"].isin(context.documents_sources)
        reasons = pd.Series(
            [
                quality_reasons(text, thresholds)
                if is_prose and thresholds.enabled and isinstance(text, str)
                else []
                for text, is_prose, thresholds in zip(
                    records["text"],
                    prose,
                    (config.documents_quality if doc else config.quality for doc in documents),
                    strict=True,
                )
            ],
            index=records.index,
            dtype=object,
        )
        records = _remove(
            records,
            reasons.map(bool),
            "quality",
            "dropped",
            reasons.map(lambda found: found[0] if found else None),
            ledger,
            stages,
            detail=reasons.map(lambda found: "failed: " + ", ".join(found) if found else None),
        )

    records = _remove(
        records,
        records["text"].str.len() < config.min_chars,
        "quality.min_chars",
        "dropped",
        "quality.too_short",
        ledger,
        stages,
        detail=f"fewer than min_chars={config.min_chars} characters after cleaning",
    ).copy()

    records["content_hash"] = [
        dedup_key(text, response)
        for text, response in zip(records["text"], records["response"], strict=True)
    ]
    signatures: list[np.ndarray | None] = [None] * len(records)
    if config.near_dedup.enabled and len(records):
        near = config.near_dedup
        signatures = signatures_to_hash(
            records,
            records["content_hash"].tolist(),
            context.indexed,
            near.num_perm,
            near.shingle_size,
        )
    records[_SIGNATURE] = [
        signature.astype("<u4").tobytes() if signature is not None else None
        for signature in signatures
    ]
    survivors = records[[*CORPUS_COLUMNS, _SIGNATURE]].reset_index(drop=True)
    return BatchResult(
        survivors,
        pd.concat(ledger, ignore_index=True) if ledger else pd.DataFrame(columns=LEDGER_COLUMNS),
        stages,
        pii_counts,
        rewrites,
    )


# Worker processes hold the run's context from their start, not with every batch.
_WORKER_CONTEXT: RunContext | None = None


def _start_worker(context: RunContext) -> None:
    global _WORKER_CONTEXT
    _WORKER_CONTEXT = context


def _count_in_worker(batch: pd.DataFrame) -> dict[tuple[str, str], tuple[int, Counter[str]]]:
    assert _WORKER_CONTEXT is not None
    return count_repeated_lines(batch, _WORKER_CONTEXT)


def _clean_in_worker(
    batch: pd.DataFrame, boilerplate: dict[tuple[str, str], set[str]]
) -> BatchResult:
    assert _WORKER_CONTEXT is not None
    return clean_batch(batch, _WORKER_CONTEXT, boilerplate)


class _BatchRunner:
    """Runs a function over batches, in worker processes when `workers` > 1, yielding results
    in input order with at most two batches per worker in flight (memory stays flat)."""

    def __init__(self, context: RunContext, workers: int) -> None:
        self.context = context
        self.pool: ProcessPoolExecutor | None = None
        if workers > 1:
            # spawn, not fork: the Dagster process holds threads and open handles.
            self.pool = ProcessPoolExecutor(
                workers,
                mp_context=get_context("spawn"),
                initializer=_start_worker,
                initargs=(context,),
            )
        self.window = max(1, 2 * workers)

    def map(
        self, function: Callable[..., Any], batches: Iterable[pd.DataFrame], *args: Any
    ) -> Iterator[Any]:
        if self.pool is None:
            _start_worker(self.context)
            for batch in batches:
                yield function(batch, *args)
            return
        pending: list[Future[Any]] = []
        for batch in batches:
            pending.append(self.pool.submit(function, batch, *args))
            if len(pending) >= self.window:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


@dataclass
class CleaningSummary:
    """What a streamed cleaning run did; the corpus and ledger themselves went to the sinks."""

    stage_counts: list[dict[str, Any]]
    pii_counts: Counter[str]
    rewrites: dict[str, int]
    near_duplicate_index: NearDuplicateIndex | None
    raw_records: int
    kept_by_source: Counter[str]
    outcomes: Counter[tuple[str, str]]  # (action, reason) -> records
    preview: pd.DataFrame  # the first kept records


def clean_stream(
    batches: Callable[[], Iterable[pd.DataFrame]],
    config: CleaningConfig,
    write_corpus: Callable[[pd.DataFrame], None],
    write_ledger: Callable[[pd.DataFrame], None],
    forget: set[str] | None = None,
    near_duplicate_index: NearDuplicateIndex | None = None,
    code_sources: set[str] | None = None,
    workers: int = 1,
    spill_dir: Path | None = None,
    documents_sources: set[str] | None = None,
) -> CleaningSummary:
    """Run every enabled stage over the raw records of all sources, streamed in batches.

    `batches` returns a fresh iterable of raw batches (RAW_COLUMNS) each time it is called: the
    boilerplate pass reads the input once more. Corpus rows (CORPUS_COLUMNS) and ledger rows
    (LEDGER_COLUMNS) are handed to `write_corpus` and `write_ledger` batch by batch.
    `forget` holds ids to remove ('<source>/<record_id>' or a bare record id);
    `near_duplicate_index` (from an earlier run) makes its records count as earlier and is
    extended in place. `workers` processes run the per-record stages. Records of
    `documents_sources` are judged by `config.documents_quality`, the others by `config.quality`.
    """
    near = config.near_dedup
    index = near_duplicate_index
    if near.enabled:
        if index is None:
            index = NearDuplicateIndex(near.threshold, near.num_perm, near.shingle_size)
        check_index_settings(index, near.threshold, near.num_perm, near.shingle_size)
    context = RunContext(
        config=config,
        forget=frozenset(forget or ()),
        code_sources=frozenset(code_sources or ()),
        documents_sources=frozenset(documents_sources or ()),
        pseudonym_key=secrets.token_bytes(32),
        indexed=index.digest_by_key() if index is not None else {},
    )
    stages = StageCounts()
    pii_counts: Counter[str] = Counter()
    rewrites: Counter[str] = Counter()
    outcomes: Counter[tuple[str, str]] = Counter()
    kept_by_source: Counter[str] = Counter()
    preview: list[pd.DataFrame] = []
    raw_records = 0

    def to_ledger(rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        outcomes.update(zip(rows["action"], rows["reason"].fillna("-"), strict=True))
        write_ledger(rows[LEDGER_COLUMNS])

    def counted(rows: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        nonlocal raw_records
        for batch in rows:
            raw_records += len(batch)
            yield batch

    runner = _BatchRunner(context, workers)
    try:
        boilerplate: dict[tuple[str, str], set[str]] = {}
        if "boilerplate" in config.noise.steps:
            frequent: dict[tuple[str, str], FrequentLines] = {}
            for counts in runner.map(_count_in_worker, batches()):
                for key, (texts, lines) in counts.items():
                    frequent.setdefault(key, FrequentLines()).add(lines, texts)
            boilerplate = {
                key: lines.boilerplate(
                    config.noise.boilerplate_min_fraction, config.noise.boilerplate_min_documents
                )
                for key, lines in frequent.items()
            }

        first_of: dict[Hashable, str] = {}
        present: set[str] = set()
        changed: set[str] = set()
        with tempfile.TemporaryDirectory(dir=spill_dir, prefix="cleaning-spill-") as folder:
            spill = TableWriter(Path(folder) / "survivors.parquet", _spill_schema(), digest=False)
            for result in runner.map(_clean_in_worker, counted(batches()), boilerplate):
                stages.merge(result.stages)
                pii_counts.update(result.pii_counts)
                rewrites.update(result.rewrites)
                to_ledger(result.ledger)
                survivors = result.survivors
                if config.exact_dedup:
                    # 16 bytes of the hash per record, not its 64-character hex string.
                    duplicate_of = mark_exact_duplicates(
                        survivors,
                        first_of,
                        keys=[bytes.fromhex(key[:32]) for key in survivors["content_hash"]],
                    )
                    dropped: list[pd.DataFrame] = []
                    survivors = _remove(
                        survivors,
                        duplicate_of.notna(),
                        "dedup.exact",
                        "dropped",
                        "dedup.exact",
                        dropped,
                        stages,
                        detail="same text as an earlier record after normalization",
                        duplicate_of=duplicate_of,
                    )
                    for rows in dropped:
                        to_ledger(rows)
                if index is not None:
                    keys = record_keys(survivors)
                    present.update(keys)
                    changed.update(
                        key
                        for key, digest in zip(keys, survivors["content_hash"], strict=True)
                        if context.indexed.get(key, digest) != digest
                    )
                spill.write(survivors)
            survivors_table = spill.close()

            if index is not None:
                # Signatures of records gone from the sources, forgotten or filtered out this
                # run must not linger: they would mark new records as copies of nothing. Records
                # whose content changed are compared afresh, not against their old selves.
                index.keep_only(present - changed)
            for survivors in survivors_table.batches(config.batch_size):
                if index is not None:
                    signatures = [
                        np.frombuffer(blob, dtype="<u4").astype(np.uint32) if blob else None
                        for blob in survivors[_SIGNATURE]
                    ]
                    duplicate_of = pd.Series(
                        assign_near_duplicates(
                            record_keys(survivors),
                            survivors["content_hash"].tolist(),
                            signatures,
                            index,
                        ),
                        index=survivors.index,
                        dtype="string",
                    )
                    dropped = []
                    survivors = _remove(
                        survivors,
                        duplicate_of.notna(),
                        "dedup.near",
                        "dropped",
                        "dedup.near",
                        dropped,
                        stages,
                        detail=f"estimated Jaccard >= {near.threshold} with an earlier record",
                        duplicate_of=duplicate_of,
                    )
                    for rows in dropped:
                        to_ledger(rows)
                kept = survivors[CORPUS_COLUMNS]
                to_ledger(ledger_rows(kept, "kept", None))
                kept_by_source.update(kept["source"].astype(str))
                if sum(len(part) for part in preview) < 20:
                    preview.append(kept.head(20))
                write_corpus(kept.reset_index(drop=True))
    finally:
        runner.close()

    return CleaningSummary(
        stage_counts=stages.as_list(),
        pii_counts=pii_counts,
        rewrites=dict(rewrites),
        near_duplicate_index=index,
        raw_records=raw_records,
        kept_by_source=kept_by_source,
        outcomes=outcomes,
        preview=(
            pd.concat(preview, ignore_index=True).head(20)
            if preview
            else pd.DataFrame(columns=CORPUS_COLUMNS)
        ),
    )


@dataclass
class CleaningResult:
    corpus: pd.DataFrame
    ledger: pd.DataFrame
    stage_counts: list[dict[str, object]] = field(default_factory=list)
    pii_counts: Counter[str] = field(default_factory=Counter)
    rewrites: dict[str, int] = field(default_factory=dict)
    near_duplicate_index: NearDuplicateIndex | None = None


def clean_corpus(
    raw: pd.DataFrame,
    config: CleaningConfig,
    forget: set[str] | None = None,
    near_duplicate_index: NearDuplicateIndex | None = None,
    code_sources: set[str] | None = None,
    workers: int = 1,
    documents_sources: set[str] | None = None,
) -> CleaningResult:
    """`clean_stream` over a table in memory, returning the corpus and the ledger as tables."""
    corpus: list[pd.DataFrame] = []
    ledger: list[pd.DataFrame] = []
    size = config.batch_size

    def batches() -> Iterator[pd.DataFrame]:
        for start in range(0, len(raw), size):
            yield raw.iloc[start : start + size]

    summary = clean_stream(
        batches,
        config,
        corpus.append,
        ledger.append,
        forget=forget,
        near_duplicate_index=near_duplicate_index,
        code_sources=code_sources,
        workers=workers,
        documents_sources=documents_sources,
    )
    return CleaningResult(
        corpus=(
            pd.concat(corpus, ignore_index=True) if corpus else pd.DataFrame(columns=CORPUS_COLUMNS)
        ),
        ledger=(
            pd.concat(ledger, ignore_index=True) if ledger else pd.DataFrame(columns=LEDGER_COLUMNS)
        ),
        stage_counts=summary.stage_counts,
        pii_counts=summary.pii_counts,
        rewrites=summary.rewrites,
        near_duplicate_index=summary.near_duplicate_index,
    )


def stored_table_batches(
    tables: list[StoredTable], batch_size: int, frames: list[pd.DataFrame] | None = None
) -> Iterator[pd.DataFrame]:
    """The raw tables' rows in order, batch by batch, then those of `frames` (small raw tables
    already in memory, such as curated feedback)."""
    for table in tables:
        yield from table.batches(batch_size)
    for frame in frames or []:
        for start in range(0, len(frame), batch_size):
            yield frame.iloc[start : start + batch_size].reset_index(drop=True)
