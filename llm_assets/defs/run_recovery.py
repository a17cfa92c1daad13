"""Runs whose process died (SIGKILL, an OOM kill, a reboot, a closed laptop) stay STARTED in the
instance and keep their pool slots: the next run would wait for them forever. This module finds
them (`llm_assets.defs.run_liveness` judges which are dead), marks them failed with the reason,
and frees their slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from llm_assets.defs.run_liveness import DEFAULT_SILENCE_TIMEOUT_SECONDS, process_tags, why_dead

# The CLI tags its runs with `process_tags` from here, beside the recovery that reads them.
__all__ = [
    "ORPHAN_CLAIM_SECONDS",
    "RecoveredRun",
    "dead_runs_sensor",
    "free_run",
    "free_slots_of_ended_runs",
    "process_tags",
    "recover_dead_runs",
]

# Slots claimed for a run id that has no run record (a process killed between claiming and
# starting the run) are freed after this long: a live process starts its run within moments.
ORPHAN_CLAIM_SECONDS = 60.0


@dataclass(frozen=True)
class RecoveredRun:
    """A run that was found dead, marked failed and stripped of its pool slots."""

    run_id: str
    job_name: str
    reason: str


def recover_dead_runs(
    instance: dg.DagsterInstance,
    silence_timeout_seconds: float = DEFAULT_SILENCE_TIMEOUT_SECONDS,
) -> list[RecoveredRun]:
    """Mark every dead STARTING/STARTED run failed, with the reason, and free the pool slots
    held by dead, finished or never-started runs. Returns the runs marked failed.

    Their checkpoints are left where they are, so the next run of the same asset on the same
    inputs resumes from them.
    """
    recovered = []
    in_progress = instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED])
    )
    for record in in_progress:
        reason = why_dead(instance, record, silence_timeout_seconds)
        if reason is None:
            continue
        run = record.dagster_run
        message = (
            f"Marked failed by llm-assets before a new run: {reason}. Its pool slots were "
            "freed; its checkpoints are kept, so re-running resumes from them."
        )
        instance.report_run_failed(run, message)
        _free_slots(instance, run.run_id)
        recovered.append(RecoveredRun(run.run_id, run.job_name, reason))
    free_slots_of_ended_runs(instance)
    return recovered


def free_run(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Mark `run_id` failed if it is still in progress, and free its pool slots, whether its
    process lives or not: for a run hung on a machine that is gone. False if there is no such
    run."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return False
    if not run.is_finished:
        instance.report_run_failed(run, "Marked failed by hand (llm-assets recover --run-id).")
    _free_slots(instance, run_id)
    return True


def free_slots_of_ended_runs(instance: dg.DagsterInstance) -> list[str]:
    """Free pool slots (claimed or queued for) of runs that have ended, and of run ids with no
    run at all after `ORPHAN_CLAIM_SECONDS`. Returns the run ids freed.

    Dagster frees a step's slot when the step ends in a live process, and the daemon does so for
    ended runs with `run_monitoring.free_slots_after_run_end_seconds`; without a daemon (the CLI)
    a killed run's slots stay claimed until this runs."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    run_ids = storage.get_concurrency_run_ids()
    if not run_ids:
        return []
    records = {
        r.dagster_run.run_id: r for r in instance.get_run_records(dg.RunsFilter(sorted(run_ids)))
    }
    freed = []
    for run_id in sorted(run_ids):
        record = records.get(run_id)
        if record is None:
            if _claim_age(instance, run_id) < ORPHAN_CLAIM_SECONDS:
                continue
        elif not record.dagster_run.is_finished:
            continue
        _free_slots(instance, run_id)
        freed.append(run_id)
    return freed


def _claim_age(instance: dg.DagsterInstance, run_id: str) -> float:
    """Seconds since the oldest pending or assigned claim of `run_id` was made."""
    storage = instance.event_log_storage
    oldest = None
    for pool in storage.get_concurrency_keys():
        for step in storage.get_concurrency_info(pool).pending_steps:
            if step.run_id == run_id:
                stamp = step.enqueued_timestamp
                oldest = stamp if oldest is None else min(oldest, stamp)
    if oldest is None:
        return float("inf")
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return (datetime.now(UTC) - oldest).total_seconds()


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> None:
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def dead_runs_sensor() -> dg.SensorDefinition:
    """Built on call, not at import: Dagster's loader would otherwise find one more copy in every
    module that imports it."""

    @dg.sensor(
        name="dead_runs_sensor",
        minimum_interval_seconds=120,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks runs whose process died (killed, rebooted) failed and frees their "
        "pool slots, so the next run (the quarterly schedule's) is not blocked by them. Runs on "
        "a launcher that reports worker health (Kubernetes) are left to Dagster's run "
        "monitoring.",
    )
    def mark_dead_runs_failed(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        recovered = recover_dead_runs(context.instance)
        for run in recovered:
            context.log.warning(f"run {run.run_id} ({run.job_name}) marked failed: {run.reason}")
        if not recovered:
            return dg.SkipReason("no dead run")
        return dg.SkipReason(f"{len(recovered)} dead runs marked failed, slots freed")

    return mark_dead_runs_failed
