"""An evaluation or promotion step's result as its asset's output."""

from typing import Any, TypeVar

import dagster as dg

from llm_assets.defs.metadata import as_metadata
from llm_assets.evaluation.step import EvaluationRun

ValueT = TypeVar("ValueT")


def evaluation_output(made: EvaluationRun[ValueT], **metadata: Any) -> dg.Output[ValueT]:
    """`made.value` with its data version (Dagster's own when it has none) and its report as
    metadata, followed by `metadata` (values already rendered for Dagster)."""
    version = None if made.data_version is None else dg.DataVersion(made.data_version)
    return dg.Output(
        made.value, data_version=version, metadata={**as_metadata(made.report), **metadata}
    )
