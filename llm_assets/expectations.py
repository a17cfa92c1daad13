"""Great Expectations suites run on a DataFrame, with the outcome reduced to what a person needs.

The failing expectations are reported by name and count; offending values are not copied out,
because a PII check must not leak the PII it found.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class SuiteOutcome:
    suite: str
    passed: bool
    evaluated: int
    failures: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        if self.passed:
            return f"{self.suite}: all {self.evaluated} expectations met"
        lines = [f"{self.suite}: {len(self.failures)} of {self.evaluated} expectations failed"]
        lines += [
            f"- {f['expectation']} {f['column'] or ''}: {f['unexpected']}" for f in self.failures
        ]
        return "\n".join(lines)


@functools.cache
def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # Progress bars would flood the Dagster compute logs, one per expectation suite.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def run_suite(frame: pd.DataFrame, suite_name: str, expectations: list[Any]) -> SuiteOutcome:
    """Validate `frame` against `expectations` (instances of `gx.expectations.*`)."""
    import great_expectations as gx

    context = _context()
    name = f"{suite_name}-{len(context.data_sources.all())}"
    batch = (
        context.data_sources.add_pandas(name)
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(name)
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(name=suite_name)
    for expectation in expectations:
        suite.add_expectation(expectation)
    result = batch.validate(suite, result_format="SUMMARY")
    failures = []
    for item in result.results:
        if item.success:
            continue
        details = item.result or {}
        failures.append(
            {
                "expectation": item.expectation_config.type,
                "column": item.expectation_config.kwargs.get("column"),
                "unexpected": details.get("unexpected_count", details.get("observed_value")),
                "exception": (item.exception_info or {}).get("exception_message"),
            }
        )
    return SuiteOutcome(suite_name, bool(result.success), len(result.results), failures)
