"""Whether the process of a STARTING/STARTED run still lives.

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

import dagster as dg

HOST_TAG = "llm_assets/host"
PID_TAG = "llm_assets/pid"
DEFAULT_SILENCE_TIMEOUT_SECONDS = 3600.0


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
