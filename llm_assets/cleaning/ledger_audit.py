"""Whether the cleaning ledger accounts for every input record, against what each raw asset and
each quarter of curated feedback recorded (not what the cleaning step itself counted)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from llm_assets.cleaning.expectations import ledger_expectations
from llm_assets.cleaning.ledger import ledger_discrepancies
from llm_assets.expectations import run_suite
from llm_assets.sources.feedback import FEEDBACK_SOURCE


@dataclass(frozen=True)
class LedgerAudit:
    passed: bool
    description: str
    report: dict[str, object]


def audit_ledger(
    raw_counts: Mapping[str, int], feedback_counts: Mapping[str, int], ledger: pd.DataFrame
) -> LedgerAudit:
    """`raw_counts`: records per source; `feedback_counts`: records per feedback quarter.
    Passes when the ledger has one row per record and meets its expectations."""
    expected = dict(raw_counts)
    if feedback_counts:
        expected[FEEDBACK_SOURCE] = sum(feedback_counts.values())
    problems = ledger_discrepancies(expected, ledger)
    outcome = run_suite(ledger, "cleaning_ledger", ledger_expectations())
    return LedgerAudit(
        passed=outcome.passed and not problems,
        description="\n".join(problems) or outcome.summary(),
        report={
            "raw_records": sum(expected.values()),
            "ledger_rows": len(ledger),
            "discrepancies": problems,
            "expectations_failed": len(outcome.failures),
        },
    )
