"""One configured source read whole, in batches, or record by record, by its kind's reader."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pandas as pd

from llm_assets.settings import Profile, SourceConfig
from llm_assets.sources.documents import iter_documents
from llm_assets.sources.git import read_git
from llm_assets.sources.instructions import iter_instructions
from llm_assets.sources.records import RawRecord, matching_files, records_to_frame
from llm_assets.sources.sql import read_sql
from llm_assets.sources.tabular import iter_tabular


def iter_source_records(profile: Profile, source: SourceConfig) -> Iterator[RawRecord]:
    """Every record of one configured source, one at a time. Raises at once, with what to fix,
    when the source as a whole cannot be read (no file matches the glob, the database or
    repository cannot be opened); single bad records are quarantined instead."""
    if source.kind == "sql":
        return iter(read_sql(source))
    if source.kind == "git":
        return iter(read_git(source, Path(profile.source_glob(source))))
    pattern = profile.source_glob(source)
    if not matching_files(pattern):
        raise FileNotFoundError(
            f"source '{source.name}': no file matches {pattern} (path: {source.path!r}, relative "
            f"to the profile's folder {profile.base_dir}); fix `path` in the profile"
        )
    if source.kind in ("jsonl", "csv"):
        return iter_tabular(source, pattern)
    if source.kind == "documents":
        return iter_documents(source, pattern)
    if source.kind == "instructions":
        return iter_instructions(source, pattern)
    # settings.SourceConfig rejects kinds without a reader
    raise ValueError(f"source '{source.name}': no reader for kind '{source.kind}'")


def source_batches(
    profile: Profile, source: SourceConfig, batch_size: int
) -> Iterator[pd.DataFrame]:
    """The source's records as RAW_COLUMNS tables of at most `batch_size` rows."""
    records = iter_source_records(profile, source)
    while batch := list(islice(records, batch_size)):
        yield records_to_frame(batch)


def read_source(profile: Profile, source: SourceConfig) -> pd.DataFrame:
    """All records of one configured source as one RAW_COLUMNS table."""
    return records_to_frame(list(iter_source_records(profile, source)))
