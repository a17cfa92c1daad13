"""Readers, one module per source kind; each returns every input record, readable or not.

`iter_source_records`, `source_batches` and `read_source` (in reading.py) are imported on first
use: every profile load imports `llm_assets.sources.config`, and so this package, which must not
pull pandas and every reader in with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_assets.sources.reading import iter_source_records, read_source, source_batches

__all__ = ["iter_source_records", "read_source", "source_batches"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from llm_assets.sources import reading

        return getattr(reading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
