"""Group `feedback`: what users said about served answers, one partition per quarter."""

from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.defs.location import stage_definitions
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import FeedbackStoreResource
from llm_assets.settings import FeedbackConfig, Profile
from llm_assets.sources.feedback import run_feedback_curation

QUARTER_CRON = "0 0 1 1,4,7,10 *"


def quarters(config: FeedbackConfig) -> dg.TimeWindowPartitionsDefinition:
    """Calendar quarters from `first_quarter`; a quarter becomes a partition once it has ended,
    so a partition's feedback never changes after it is read."""
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=QUARTER_CRON,
        start=config.first_quarter.isoformat(),
        fmt="%Y-%m-%d",
        timezone="UTC",
    )


def feedback_records_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = AssetSettings(
        profile,
        "feedback_records",
        reads=["feedback.min_rating_kept"],
        code=["defs/feedback.py", "sources/feedback.py", "serving/store.py"],
    )

    @dg.asset(
        group_name="feedback",
        partitions_def=quarters(profile.feedback),
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"sql", "pandas"},
    )
    def feedback_records(
        context: dg.AssetExecutionContext, feedback_store: FeedbackStoreResource
    ) -> dg.Output[pd.DataFrame]:
        """Answers judged during the quarter, curated into raw records: a corrected answer
        becomes a training pair with the correction, a liked one is kept as it was, the rest
        are marked dropped with a `feedback.*` reason. Cleaning reads every quarter's
        records like a source, so they pass PII redaction, dedup and quality filters and the
        ledger accounts for each one."""
        from llm_assets.serving.store import read_feedback

        window = context.partition_time_window
        run = run_feedback_curation(
            read_feedback(feedback_store.engine(), window.start, window.end),
            settings.profile.feedback.min_rating_kept,
            context.partition_key,
            window.start,
            window.end,
        )
        return stage_output(run, store=feedback_store.url().split("@")[-1])

    return feedback_records


def build_feedback_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    return [feedback_records_asset(profile)], []


@dg.definitions
def feedback_definitions() -> dg.Definitions:
    return stage_definitions(build_feedback_defs)
