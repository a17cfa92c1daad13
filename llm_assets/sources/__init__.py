"""Readers, one module per source kind; each returns every input record, readable or not."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from llm_assets.settings import Profile, SourceConfig
from llm_assets.sources.documents import read_documents
from llm_assets.sources.git import read_git
from llm_assets.sources.instructions import read_instructions
from llm_assets.sources.records import RawRecord, matching_files, records_to_frame
from llm_assets.sources.sql import read_sql
from llm_assets.sources.tabular import read_tabular


def read_source(profile: Profile, source: SourceConfig) -> pd.DataFrame:
    """All records of one configured source as a table with the RAW_COLUMNS schema. Raises,
    with what to fix, when the source as a whole cannot be read (no file matches the glob, the
    database or repository cannot be opened); single bad records are quarantined instead."""
    if source.kind == "sql":
        return records_to_frame(read_sql(source))
    if source.kind == "git":
        return records_to_frame(read_git(source, Path(profile.source_glob(source))))
    pattern = profile.source_glob(source)
    if not matching_files(pattern):
        raise FileNotFoundError(
            f"source '{source.name}': no file matches {pattern} (path: {source.path!r}, relative "
            f"to the profile's folder {profile.base_dir}); fix `path` in the profile"
        )
    records: list[RawRecord]
    if source.kind in ("jsonl", "csv"):
        records = read_tabular(source, pattern)
    elif source.kind == "documents":
        records = read_documents(source, pattern)
    elif source.kind == "instructions":
        records = read_instructions(source, pattern)
    else:  # settings.SourceConfig rejects kinds without a reader
        raise ValueError(f"source '{source.name}': no reader for kind '{source.kind}'")
    return records_to_frame(records)
