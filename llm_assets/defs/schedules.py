"""The quarterly loop: a job that re-runs sources through export, its schedule, and a sensor
that re-cleans (without re-training) when document folders change."""

import hashlib
from typing import Any

import dagster as dg

from llm_assets.defs.run_recovery import dead_runs_sensor
from llm_assets.settings import Profile
from llm_assets.sources.raw_table import raw_asset_name
from llm_assets.sources.records import matching_files

QUARTERLY_JOB = "quarterly_refinetune"
CLEANING_JOB = "cleaning_job"


def build_automation(profile: Profile) -> tuple[list[Any], list[Any], list[Any]]:
    """(jobs, schedules, sensors) of `profile`."""
    # Everything, sources through export: the job is partitioned by quarter through
    # feedback_records, so a run reads the quarter that just ended and trains on every
    # quarter's curated feedback so far. The challenger is evaluated against the champion on
    # the same golden set and promoted only when it meets the use case's criteria.
    quarterly = dg.define_asset_job(
        QUARTERLY_JOB,
        selection=dg.AssetSelection.all(include_sources=False),
        description="Re-read every source and the last quarter's feedback, clean, rebuild the "
        "datasets, re-fine-tune, evaluate against the champion, promote if better, export.",
        # The production instance queues runs tagged llm_assets/gpu one at a time per GPU.
        tags={"llm_assets/loop": "quarterly", "llm_assets/gpu": "true"},
    )
    schedule = dg.build_schedule_from_partitioned_job(
        quarterly,
        name=f"{QUARTERLY_JOB}_schedule",
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if profile.feedback.schedule_running
            else dg.DefaultScheduleStatus.STOPPED
        ),
    )
    document_sources = [source for source in profile.sources if source.kind == "documents"]
    cleaning = dg.define_asset_job(
        CLEANING_JOB,
        selection=dg.AssetSelection.groups("sources", "cleaning"),
        description="Re-read the sources and re-clean; training waits for the quarterly run.",
    )
    # Dead runs are recovered whether or not anything else runs: they block the GPU pool.
    sensors: list[Any] = [dead_runs_sensor()]
    if document_sources:
        globs = [profile.source_glob(source) for source in document_sources]

        @dg.sensor(
            job=cleaning,
            minimum_interval_seconds=profile.feedback.document_sensor_interval_seconds,
            default_status=(
                dg.DefaultSensorStatus.RUNNING
                if profile.feedback.document_sensor_running
                else dg.DefaultSensorStatus.STOPPED
            ),
            description="Re-runs cleaning (not training) when a file in a document source is "
            f"added, removed or changed: {', '.join(raw_asset_name(s) for s in document_sources)}",
        )
        def document_folders_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
            fingerprint = folders_fingerprint(globs)
            if context.cursor is None:
                # First look: remember the folders as they are; nothing has changed yet.
                return dg.SensorResult(cursor=fingerprint)
            if fingerprint == context.cursor:
                return dg.SensorResult(skip_reason="no document changed")
            return dg.SensorResult(
                run_requests=[dg.RunRequest(run_key=fingerprint)], cursor=fingerprint
            )

        sensors.append(document_folders_sensor)
    return [quarterly, cleaning], [schedule], sensors


def folders_fingerprint(globs: list[str]) -> str:
    """A digest of every matching file's path, size and modification time: it changes when a
    file is added, removed or rewritten."""
    digest = hashlib.sha256()
    for pattern in globs:
        for path in matching_files(pattern):
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]
