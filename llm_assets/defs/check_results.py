"""Great Expectations outcomes as Dagster asset check results."""

from typing import Any

import dagster as dg

from llm_assets.expectations import SuiteOutcome


def to_check_result(outcome: SuiteOutcome, **metadata: Any) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcome.summary(),
        metadata={
            "expectations_evaluated": outcome.evaluated,
            "expectations_failed": len(outcome.failures),
            "failures": dg.MetadataValue.json(outcome.failures),
            **metadata,
        },
    )


def preview(frame: Any, columns: list[str], rows: int = 5, width: int = 80) -> dg.MetadataValue:
    """A Markdown table of the first rows, long cells shortened, for the asset page."""
    shown = frame[columns].head(rows).copy()
    for column in columns:
        shown[column] = shown[column].map(
            lambda value: (str(value)[:width] + "…") if len(str(value)) > width else str(value)
        )
        shown[column] = shown[column].str.replace("|", "\\|").str.replace("\n", " ")
    return dg.MetadataValue.md(shown.to_markdown(index=False))
