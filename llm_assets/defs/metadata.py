"""What a stage reports, as Dagster metadata.

Stage functions return plain values (they never import dagster); this turns them into what the
UI shows: a `Path` becomes a path, `Markdown` rendered text, `Link` a link, a DataFrame a
Markdown table, a dict or list JSON, numbers and strings themselves.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import pandas as pd

from llm_assets.contracts import Link, Markdown
from llm_assets.defs.check_results import preview
from llm_assets.stage_output import StageOutput


def metadata_value(value: Any) -> Any:
    if isinstance(value, dg.MetadataValue):
        return value
    if isinstance(value, Path):
        return dg.MetadataValue.path(str(value))
    if isinstance(value, Markdown):
        return dg.MetadataValue.md(str(value))
    if isinstance(value, Link):
        return dg.MetadataValue.url(str(value))
    if isinstance(value, pd.DataFrame):
        return dg.MetadataValue.md(value.to_markdown(index=False, floatfmt=".4g"))
    if isinstance(value, Mapping | list | tuple):
        return dg.MetadataValue.json(value)
    return value


def as_metadata(report: Mapping[str, Any]) -> dict[str, Any]:
    """`report`'s values as metadata values; `None` values are left out (Dagster has no null)."""
    return {key: metadata_value(value) for key, value in report.items() if value is not None}


ValueT = TypeVar("ValueT")


def stage_output(
    made: StageOutput[ValueT], *, output_name: str | None = None, **metadata: Any
) -> dg.Output[ValueT]:
    """A stage function's result as its asset's output: the value, its data version (Dagster's
    own when it has none), its report as metadata, then its preview, then `metadata` (values
    already rendered for Dagster)."""
    shown = as_metadata(made.report)
    if made.preview is not None:
        shown["preview"] = preview(made.preview, list(made.preview.columns))
    version = None if made.data_version is None else dg.DataVersion(made.data_version)
    shown.update(metadata)
    if output_name is None:
        return dg.Output(made.value, data_version=version, metadata=shown)
    return dg.Output(made.value, output_name=output_name, data_version=version, metadata=shown)
