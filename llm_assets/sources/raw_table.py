"""One source read into a stored raw table, batch by batch, and what its asset page shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from llm_assets.settings import Profile, SourceConfig
from llm_assets.sources import source_batches
from llm_assets.sources.records import raw_schema, records_to_frame
from llm_assets.stage_output import StageOutput
from llm_assets.storage import StoredTable, TableWriter

ValueT = TypeVar("ValueT")

# Read errors logged one by one; the rest are only counted (a broken export can hold millions).
LOGGED_READ_ERRORS = 20


def raw_asset_name(source: SourceConfig) -> str:
    return f"raw_{source.name}"


def run_raw_records(
    profile: Profile,
    source: SourceConfig,
    scratch: Path,
    run_id: str,
    warn: Callable[[str], None],
) -> StageOutput[StoredTable]:
    """Every record of `source`, readable or not, written to a Parquet table under `scratch`.
    The first unreadable records are passed to `warn`."""
    # Written batch by batch: a source far larger than memory reads in flat memory.
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / f"{raw_asset_name(source)}-{run_id}.parquet"
    writer = TableWriter(path, raw_schema())
    unreadable = 0
    first = records_to_frame([])
    try:
        for batch in source_batches(profile, source, profile.cleaning.batch_size):
            errors = batch["error_detail"][batch["read_error"].notna()]
            for detail in errors.head(max(0, LOGGED_READ_ERRORS - unreadable)):
                warn(f"quarantined: {detail}")
            unreadable += len(errors)
            first = batch if first.empty else first
            writer.write(batch)
    except BaseException:
        writer.close()
        path.unlink(missing_ok=True)
        raise
    table = writer.close()
    return StageOutput(
        value=table,
        report={
            "dagster/row_count": table.rows,
            "records": table.rows,
            "unreadable": unreadable,
            "path": profile.source_glob(source),
        },
        data_version=table.digest,
        # No text in the preview: raw records still hold PII, and metadata is kept forever.
        preview=first.assign(chars=first["text"].str.len())[
            ["record_id", "uri", "chars", "read_error"]
        ],
    )
