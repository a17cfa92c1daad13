"""Group `feedback`: what users said about served answers, one partition per quarter."""

from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.defs.check_results import preview
from llm_assets.defs.resources import FeedbackStoreResource
from llm_assets.settings import FeedbackConfig, Profile
from llm_assets.storage import frame_digest

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


def build_feedback_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
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
        from llm_assets.sources.feedback import curate_feedback, latest_per_response
        from llm_assets.sources.records import records_to_frame

        window = context.partition_time_window
        rows = read_feedback(feedback_store.engine(), window.start, window.end)
        exchanges = latest_per_response(rows)
        min_rating = settings.profile.feedback.min_rating_kept
        records = curate_feedback(exchanges, min_rating, context.partition_key)
        frame = records_to_frame(records)
        verdicts = (
            frame["read_error"].fillna("kept").value_counts().rename_axis("verdict").reset_index()
        )
        return dg.Output(
            frame,
            data_version=dg.DataVersion(frame_digest(frame)),
            metadata={
                "quarter": f"{window.start:%Y-%m-%d} to {window.end:%Y-%m-%d}",
                "feedback_rows": len(rows),
                "answers_judged": len(exchanges),
                "records": len(frame),
                "kept": int(frame["read_error"].isna().sum()),
                "verdicts": dg.MetadataValue.md(verdicts.to_markdown(index=False)),
                "preview": preview(frame, ["record_id", "text", "response", "read_error"]),
                "store": feedback_store.url().split("@")[-1],
            },
        )

    return [feedback_records], []
