"""A datasets check's verdict as a Dagster check result."""

import dagster as dg

from llm_assets.datasets.outputs import DatasetCheck
from llm_assets.defs.metadata import as_metadata


def as_check_result(check: DatasetCheck) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=check.passed, description=check.description, metadata=as_metadata(check.report)
    )
