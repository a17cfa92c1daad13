"""Checks of the cleaned corpus and of the ledger."""

from functools import partial

import dagster as dg
import pandas as pd

from llm_assets.cleaning.expectations import cleaned_corpus_expectations, no_pii_expectations
from llm_assets.cleaning.ledger_audit import audit_ledger
from llm_assets.defs.check_results import to_check_result
from llm_assets.defs.cleaning.assets import latest_metadata
from llm_assets.defs.metadata import as_metadata
from llm_assets.defs.sources import raw_asset_name
from llm_assets.expectations import run_suite
from llm_assets.settings import Profile


def _feedback_record_counts(instance: dg.DagsterInstance) -> dict[str, int]:
    """Records per materialized quarter of `feedback_records`, as each recorded them."""
    key = dg.AssetKey("feedback_records")
    counts = {}
    for partition in sorted(instance.get_materialized_partitions(key)):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        materialization = records[0].asset_materialization if records else None
        if materialization is not None:
            counts[partition] = int(materialization.metadata["records"].value)  # type: ignore[arg-type]
    return counts


def ledger_check(profile: Profile) -> dg.AssetChecksDefinition:
    raw_names = {source.name: raw_asset_name(source) for source in profile.sources}

    @dg.asset_check(
        asset="cleaning_ledger",
        additional_deps=list(raw_names.values()),
        blocking=True,
        description="Raw totals equal kept + dropped + quarantined, per source, one row each.",
    )
    def cleaning_ledger_accounts_for_every_record(
        context: dg.AssetCheckExecutionContext, cleaning_ledger: pd.DataFrame
    ) -> dg.AssetCheckResult:
        raw_counts = {}
        for source, name in raw_names.items():
            metadata = latest_metadata(context.instance, name)
            if metadata is None:
                return dg.AssetCheckResult(passed=False, description=f"{name} is not materialized")
            raw_counts[source] = int(metadata["records"].value)
        feedback = _feedback_record_counts(context.instance)
        audit = audit_ledger(raw_counts, feedback, cleaning_ledger)
        return dg.AssetCheckResult(
            passed=audit.passed, description=audit.description, metadata=as_metadata(audit.report)
        )

    return cleaning_ledger_accounts_for_every_record


def cleaned_corpus_has_no_pii_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="cleaned_corpus", blocking=True, description="No identifier survived redaction."
    )
    def cleaned_corpus_has_no_pii(cleaned_corpus: pd.DataFrame) -> dg.AssetCheckResult:
        return to_check_result(
            run_suite(cleaned_corpus, "cleaned_corpus_pii", no_pii_expectations())
        )

    return cleaned_corpus_has_no_pii


def well_formed_check(profile: Profile) -> dg.AssetChecksDefinition:
    expectations = partial(
        cleaned_corpus_expectations,
        profile.cleaning.min_chars,
        max(source.max_record_chars for source in profile.sources),
    )

    @dg.asset_check(
        asset="cleaned_corpus",
        blocking=True,
        description="Unique non-null ids, texts within length bounds, no exact duplicates left.",
    )
    def cleaned_corpus_is_well_formed(cleaned_corpus: pd.DataFrame) -> dg.AssetCheckResult:
        return to_check_result(run_suite(cleaned_corpus, "cleaned_corpus", expectations()))

    return cleaned_corpus_is_well_formed
