"""One cleaning run over every raw table and every quarter of curated feedback: the cleaned
corpus, the ledger that accounts for each input record, the near-duplicate index the next run
starts from, and what their asset pages show.

Run it with `run_cleaning`, then store the index with `store_near_duplicate_index`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from llm_assets.cleaning.chain import (
    CleaningSummary,
    clean_stream,
    corpus_schema,
    ledger_schema,
    read_forget_requests,
    stored_table_batches,
)
from llm_assets.cleaning.dedup import NearDuplicateIndex
from llm_assets.cleaning.ledger import ACTIONS
from llm_assets.contracts import Link, Markdown, NearDuplicateIndexFile
from llm_assets.settings import CleaningConfig, NearDuplicateConfig, Profile
from llm_assets.stage_output import ArtifactFolders, StageOutput
from llm_assets.storage import StoredTable, TableWriter

ValueT = TypeVar("ValueT")

PREVIEW_COLUMNS = ["source", "record_id", "text", "response"]


@dataclass(frozen=True)
class CleaningRun:
    cleaned_corpus: StageOutput[StoredTable]
    cleaning_ledger: StageOutput[StoredTable]
    # Extended in place from the previous run's; None when near-dedup is off.
    near_duplicate_index: NearDuplicateIndex | None


def forget_requests(path: Path | None) -> set[str]:
    """The record ids the forget file at `path` asks to remove; none without a file."""
    if path is None:
        return set()
    if not path.is_file():
        raise FileNotFoundError(f"cleaning.forget_file: {path} does not exist")
    return read_forget_requests(path.read_text(encoding="utf-8").splitlines())


def cleaning_workers(configured: int | None, rows: int, batch_size: int) -> int:
    """Worker processes for the per-record stages: every core by default, but no more than
    there are batches (starting a worker costs seconds; a small corpus is one batch)."""
    return max(1, min(configured or os.cpu_count() or 1, -(-rows // batch_size)))


def previous_near_duplicate_index(
    path: Path | None,
    near: NearDuplicateConfig,
    log: Callable[[str], None],
    warn: Callable[[str], None],
) -> NearDuplicateIndex | None:
    """The index the last run saved at `path`, if it was built with the same settings."""
    if path is None:
        return None
    if not path.is_file():
        warn(f"previous near-duplicate index {path} is gone; starting a new one")
        return None
    index = NearDuplicateIndex.load(path)
    if (index.threshold, index.num_perm, index.shingle_size) != (
        near.threshold,
        near.num_perm,
        near.shingle_size,
    ):
        log("near-duplicate settings changed; building a new index")
        return None
    return index


def run_cleaning(
    profile: Profile,
    tables: list[StoredTable],
    feedback: list[pd.DataFrame],
    previous_index: NearDuplicateIndex | None,
    scratch: Path,
    run_id: str,
    start_mlflow_run: Callable[[str], AbstractContextManager[Any]],
    mlflow_run_url: Callable[[Any], str],
) -> CleaningRun:
    """Clean the raw `tables`, then the `feedback` quarters, into a corpus and a ledger written
    under `scratch`, starting near-dedup from `previous_index`; logs the run to MLflow through
    `start_mlflow_run(run_name)` and links it with `mlflow_run_url(run)`."""
    config = profile.cleaning
    rows = sum(table.rows for table in tables) + sum(len(frame) for frame in feedback)
    corpus = TableWriter(scratch / f"cleaned_corpus-{run_id}.parquet", corpus_schema())
    ledger = TableWriter(scratch / f"cleaning_ledger-{run_id}.parquet", ledger_schema())
    try:
        summary = clean_stream(
            lambda: stored_table_batches(tables, config.batch_size, feedback),
            config,
            corpus.write,
            ledger.write,
            forget=forget_requests(profile.forget_path()),
            near_duplicate_index=previous_index,
            code_sources={source.name for source in profile.sources if source.kind == "git"},
            documents_sources={
                source.name for source in profile.sources if source.kind == "documents"
            },
            workers=cleaning_workers(config.workers, rows, config.batch_size),
            spill_dir=scratch,
        )
    except BaseException:
        for writer in (corpus, ledger):
            writer.close().path.unlink(missing_ok=True)
        raise
    corpus_table, ledger_table = corpus.close(), ledger.close()
    with start_mlflow_run(f"cleaning-{run_id[:8]}") as run:
        _log_to_mlflow(config, summary, corpus_table.rows)
        run_url = mlflow_run_url(run)
    return CleaningRun(
        cleaned_corpus=StageOutput(
            corpus_table,
            _corpus_report(summary, corpus_table, run_url),
            corpus_table.digest,
            preview=summary.preview[PREVIEW_COLUMNS],
        ),
        cleaning_ledger=StageOutput(
            ledger_table, _ledger_report(summary, ledger_table), ledger_table.digest
        ),
        near_duplicate_index=summary.near_duplicate_index,
    )


def _log_to_mlflow(config: CleaningConfig, summary: CleaningSummary, kept: int) -> None:
    import mlflow

    mlflow.log_params({f"cleaning.{k}": v for k, v in config.model_dump(mode="json").items()})
    mlflow.log_metrics(
        {
            **{f"stage.{row['stage']}.removed": row["removed"] for row in summary.stage_counts},
            **{f"rewrite.{step}": count for step, count in summary.rewrites.items()},
            **{f"pii.{entity}": count for entity, count in summary.pii_counts.items()},
            "records.raw": summary.raw_records,
            "records.kept": kept,
        }
    )


def _corpus_report(
    summary: CleaningSummary, corpus: StoredTable, run_url: str
) -> dict[str, object]:
    stages = pd.DataFrame(summary.stage_counts)
    return {
        "dagster/row_count": corpus.rows,
        "by_source": dict(summary.kept_by_source),
        "pii_redacted": dict(summary.pii_counts),
        "stages": Markdown(stages.to_markdown(index=False)),
        "texts_rewritten": summary.rewrites,
        "mlflow_run": Link(run_url),
    }


def _ledger_report(summary: CleaningSummary, ledger: StoredTable) -> dict[str, object]:
    outcomes = pd.DataFrame(
        [
            {"action": action, "reason": reason, "records": count}
            for (action, reason), count in summary.outcomes.items()
        ],
        columns=["action", "reason", "records"],
    ).sort_values(["action", "records"], ascending=[True, False])
    actions = outcomes.groupby("action")["records"].sum()
    return {
        "dagster/row_count": ledger.rows,
        "outcomes": Markdown(outcomes.to_markdown(index=False)),
        **{action: int(actions.get(action, 0)) for action in ACTIONS},
    }


def store_near_duplicate_index(
    index: NearDuplicateIndex | None,
    near: NearDuplicateConfig,
    started_from_previous: bool,
    folders: ArtifactFolders,
    run_id: str,
) -> StageOutput[NearDuplicateIndexFile]:
    """Save `index` (if near-dedup made one) in this run's `near_duplicate_index` folder."""
    with folders.new_folder("near_duplicate_index", run_id) as folder:
        if index is not None:
            index.save(folder / "index.npz")
    path = folders.folder("near_duplicate_index", run_id) / "index.npz"
    records = len(index) if index is not None else 0
    return StageOutput(
        NearDuplicateIndexFile(
            path=str(path) if index is not None else None,
            records=records,
            settings=near.model_dump(mode="json"),
            reused_from_run=started_from_previous,
        ),
        {"path": path, "records": records, "started_from_previous": started_from_previous},
    )
