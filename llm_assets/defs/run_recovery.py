"""Runs whose process died (SIGKILL, an OOM kill, a reboot, a closed laptop) stay STARTED in the
instance and keep their pool slots: the next run would wait for them forever. This module finds
them, marks them failed with the reason, and frees their slots.

A run is judged by how it was started:
- by `llm-assets materialize` (tags `llm_assets/host`, `llm_assets/pid`): on this host, dead
  when that process is gone (or the pid now belongs to a younger process); on another host,
  dead when its event log has been silent for `silence_timeout_seconds`;
- by Dagster's daemon with a launcher that reports worker health (Kubernetes): left to run
  monitoring (`run_monitoring` in dagster.yaml), which knows better;
- by the local `DefaultRunLauncher` (`dagster dev`): with SQLite storage (this machine's
  instance), the run worker's pid from its first engine events, checked here; with a shared
  database, dead after `silence_timeout_seconds` without an event.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

HOST_TAG = "llm_assets/host"
PID_TAG = "llm_assets/pid"
# Slots claimed for a run id that has no run record (a process killed between claiming and
# starting the run) are freed after this long: a live process starts its run within moments.
ORPHAN_CLAIM_SECONDS = 60.0
DEFAULT_SILENCE_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class RecoveredRun:
    """A run that was found dead, marked failed and stripped of its pool slots."""

    run_id: str
    job_name: str
    reason: str


def process_tags() -> dict[str, str]:
    """Tags naming this process, put on every run the CLI starts so a later one can tell
    whether it is still alive."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def process_alive(pid: int, started_before: float | None = None) -> bool:
    """Whether `pid` is a live process (not a zombie) that already existed at `started_before`
    (a POSIX timestamp): a pid reused by a newer process does not count."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
    return started_before is None or created <= started_before + 1.0


def _run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid a run worker recorded in its first engine events ("Started process for run
    (pid: …)", "Executing steps in process (pid: …)")."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=5
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = getattr(event, "event_specific_data", None)
        pid = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid is not None:
            return int(getattr(pid, "value", pid))
    return None


def _last_event_time(instance: dg.DagsterInstance, run_id: str) -> float | None:
    records = instance.get_records_for_run(run_id, limit=1, ascending=False).records
    return records[0].event_log_entry.timestamp if records else None


def why_dead(
    instance: dg.DagsterInstance,
    record: dg.RunRecord,
    silence_timeout_seconds: float = DEFAULT_SILENCE_TIMEOUT_SECONDS,
    now: float | None = None,
) -> str | None:
    """Why the STARTING/STARTED run of `record` is dead, or None when it is (or may be) alive."""
    run = record.dagster_run
    now = time.time() if now is None else now
    started = record.start_time or record.create_timestamp.timestamp()
    host, pid = run.tags.get(HOST_TAG), run.tags.get(PID_TAG)
    if host is not None and pid is not None:
        if host == socket.gethostname():
            if process_alive(int(pid), started):
                return None
            return f"its process (pid {pid} on {host}) is gone"
        last = _last_event_time(instance, run.run_id) or started
        if now - last > silence_timeout_seconds:
            return (
                f"it runs on {host}, and nothing has been heard from it for "
                f"{(now - last) / 60:.0f} min (silence timeout {silence_timeout_seconds:.0f} s)"
            )
        return None
    if instance.run_launcher.supports_check_run_worker_health:
        return None  # run monitoring asks the launcher, which sees the pod or container
    if type(instance.run_launcher).__name__ != "DefaultRunLauncher":
        return None  # a launcher we cannot see into: leave it to run monitoring's timeouts
    if not _stored_on_this_machine(instance):
        # A shared database: the worker may be on another machine, where its pid means nothing
        # here. Only a long silence says it is dead.
        last = _last_event_time(instance, run.run_id) or started
        if now - last > silence_timeout_seconds:
            return f"nothing has been heard from it for {(now - last) / 60:.0f} min"
        return None
    if record.start_time is None:
        return None  # its worker may start after the run was created: run monitoring's timeout
    worker = _run_worker_pid(instance, run.run_id)
    if worker is None or process_alive(worker, record.start_time):
        return None
    return f"its run worker (pid {worker}, started by dagster's local launcher) is gone"


def _stored_on_this_machine(instance: dg.DagsterInstance) -> bool:
    """Whether the instance keeps its runs in SQLite files (dagster.yaml): then every run in it
    was started on this machine, and a run worker's pid can be checked here."""
    return "sqlite" in type(instance.run_storage).__name__.lower()


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


@dg.sensor(
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks runs whose process died (killed, rebooted) failed and frees their pool "
    "slots, so the next run (the quarterly schedule's) is not blocked by them. Runs on a "
    "launcher that reports worker health (Kubernetes) are left to Dagster's run monitoring.",
)
def dead_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    recovered = recover_dead_runs(context.instance)
    for run in recovered:
        context.log.warning(f"run {run.run_id} ({run.job_name}) marked failed: {run.reason}")
    if not recovered:
        return dg.SkipReason("no dead run")
    return dg.SkipReason(f"{len(recovered)} dead runs marked failed, slots freed")
