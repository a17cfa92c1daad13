"""What a datasets-stage function returned, as Dagster outputs and check results."""

from typing import Any

import dagster as dg

from llm_assets.datasets.outputs import DatasetCheck, DatasetOutput
from llm_assets.defs.check_results import preview
from llm_assets.defs.metadata import as_metadata


def as_output(output: DatasetOutput[Any], output_name: str | None = None) -> dg.Output[Any]:
    metadata = as_metadata(output.report)
    if output.preview is not None:
        metadata["preview"] = preview(output.preview, list(output.preview.columns))
    version = dg.DataVersion(output.data_version)
    if output_name is None:
        return dg.Output(output.value, data_version=version, metadata=metadata)
    return dg.Output(output.value, output_name=output_name, data_version=version, metadata=metadata)


def as_check_result(check: DatasetCheck) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=check.passed, description=check.description, metadata=as_metadata(check.report)
    )
