"""A run killed while it holds the GPU pool must not block the next one, and a run waiting for
the pool must sleep, say who holds it, and stop on SIGTERM.

Each run is a process of its own, as `llm-assets materialize` is, on an instance in a temporary
DAGSTER_HOME whose `gpu` pool has one slot (as the repository's dagster.yaml sets); the asset in
the pool sleeps, standing in for training.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psutil
import pytest

from llm_assets import cli
from llm_assets.defs import build_definitions
from llm_assets.defs.pools import PoolStep, first_pool_steps, split_before_pools
from llm_assets.defs.run_recovery import dead_runs_sensor, recover_dead_runs
from llm_assets.settings import load_profile

from .conftest import TINY_PROFILE

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import dagster as dg
    from llm_assets import cli

    @dg.asset(pool="gpu")
    def fine_tune() -> None:
        Path(sys.argv[1]).write_text("started")
        time.sleep(float(sys.argv[2]))

    instance = dg.DagsterInstance.get()
    if sys.argv[3:] == ["dagster"]:  # as `dagster dev`'s run worker runs it: no CLI around it
        sys.exit(0 if dg.materialize([fine_tune], instance=instance).success else 1)
    cli.prepare_instance(instance)
    try:
        ok = cli._run(dg.Definitions(assets=[fine_tune]), instance, {fine_tune.key})
    except KeyboardInterrupt:  # as `llm-assets` answers Ctrl-C and SIGTERM
        sys.exit(130)
    sys.exit(130 if cli._INTERRUPTED["run"] else 0 if ok else 1)
    """
)


def dagster_home(folder: Path) -> Path:
    """A DAGSTER_HOME in `folder` with SQLite storage and one slot per pool, as the
    repository's dagster.yaml has."""
    home = folder / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        f"storage:\n  sqlite:\n    base_dir: {home / 'storage'}\n"
        "telemetry:\n  enabled: false\n"
        "concurrency:\n  pools:\n    default_limit: 1\n"
    )
    return home


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "child.py").write_text(CHILD)
    return dagster_home(tmp_path)


@pytest.fixture
def instance(home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_process_left() -> Iterator[None]:
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _start(
    home: Path, marker: Path, seconds: float, log: Path, how: str = "cli"
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(home.parent / "child.py"), str(marker), str(seconds), how],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    STARTED.append(process)
    return process


def _wait_for(condition, seconds: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@pytest.mark.slow
def test_a_blocked_run_sleeps_names_the_holder_and_a_dead_holder_is_recovered(
    home: Path, instance: dg.DagsterInstance
) -> None:
    tmp = home.parent
    holder = _start(home, tmp / "holder.started", 600, tmp / "holder.log")
    _wait_for(lambda: (tmp / "holder.started").exists())
    [holding] = instance.event_log_storage.get_concurrency_info("gpu").claimed_slots

    waiter = _start(home, tmp / "waiter.started", 0, tmp / "waiter.log")
    _wait_for(lambda: "Waiting for a slot" in (tmp / "waiter.log").read_text())
    before = _cpu_seconds(waiter.pid)
    time.sleep(5)
    cpu = _cpu_seconds(waiter.pid) - before
    told = (tmp / "waiter.log").read_text()
    started = time.monotonic()
    waiter.send_signal(signal.SIGTERM)
    code = waiter.wait(timeout=30)

    assert cpu < 0.5, f"the waiting run used {cpu:.2f} s of CPU in 5 s"
    assert f"run {holding.run_id}, step fine_tune (STARTED) since" in told
    assert "llm-assets recover --run-id" in told
    assert told.count("Waiting for a slot") == 1
    assert time.monotonic() - started < 10 and code == 130
    info = instance.event_log_storage.get_concurrency_info("gpu")
    assert [slot.run_id for slot in info.claimed_slots] == [holding.run_id]
    assert [step.run_id for step in info.pending_steps] == [holding.run_id]  # waiter left none

    # The holder dies as in an OOM kill: the whole process tree, no cleanup.
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    assert instance.get_run_by_id(holding.run_id).status == dg.DagsterRunStatus.STARTED
    # With the daemon, dead_runs_sensor does what the CLI does before each run.
    tick = dead_runs_sensor().evaluate_tick(dg.build_sensor_context(instance=instance))

    assert tick.skip_message == "1 dead runs marked failed, slots freed"
    run = instance.get_run_by_id(holding.run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
    [failure] = instance.get_records_for_run(
        holding.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    message = failure.event_log_entry.message
    assert "its process (pid" in message and "is gone" in message
    assert not instance.event_log_storage.get_concurrency_info("gpu").claimed_slots
    assert recover_dead_runs(instance) == []  # the live and the finished are left alone

    again = _start(home, tmp / "again.started", 0, tmp / "again.log")
    assert again.wait(timeout=120) == 0, (tmp / "again.log").read_text()
    info = instance.event_log_storage.get_concurrency_info("gpu")
    assert not info.claimed_slots and not info.pending_steps


@pytest.mark.slow
def test_the_next_run_recovers_a_killed_holder_by_itself(
    home: Path, instance: dg.DagsterInstance
) -> None:
    tmp = home.parent
    holder = _start(home, tmp / "holder.started", 600, tmp / "holder.log")
    _wait_for(lambda: (tmp / "holder.started").exists())
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()

    started = time.monotonic()
    again = _start(home, tmp / "again.started", 0, tmp / "again.log")
    code = again.wait(timeout=120)
    output = (tmp / "again.log").read_text()

    assert code == 0, output
    assert "marked failed: its process (pid" in output and "Waiting for a slot" not in output
    assert time.monotonic() - started < 60
    assert not instance.event_log_storage.get_concurrency_info("gpu").claimed_slots


@pytest.mark.slow
def test_a_run_started_without_the_cli_is_judged_by_its_run_worker_pid(
    home: Path, instance: dg.DagsterInstance
) -> None:
    tmp = home.parent
    holder = _start(home, tmp / "holder.started", 600, tmp / "holder.log", how="dagster")
    _wait_for(lambda: (tmp / "holder.started").exists())
    assert recover_dead_runs(instance) == []  # alive

    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    [recovered] = recover_dead_runs(instance)

    assert recovered.reason.startswith(f"its run worker (pid {holder.pid},")
    assert not instance.event_log_storage.get_concurrency_info("gpu").claimed_slots


def test_the_gpu_run_starts_after_what_training_does_not_depend_on() -> None:
    defs = build_definitions(load_profile(TINY_PROFILE))
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())

    before, after = split_before_pools(defs, keys)

    names = {key.to_user_string() for key in after}
    assert before | after == keys and not before & after
    assert {"qlora_adapter", "eval_report"} <= names
    assert not {"cleaned_corpus", "sft_dataset", "base_model"} & names


def test_a_run_with_two_steps_in_a_one_slot_pool_starts_at_once(
    instance: dg.DagsterInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    """qlora_adapter then preference_adapter, both in "gpu" (one slot): the CLI claims the
    first one's slot, the executor the second's when the first frees it; the run never waits
    on its own claim."""

    @dg.asset(pool="gpu")
    def fine_tune() -> int:
        return 1

    @dg.asset(pool="gpu")
    def tune_on_preferences(fine_tune: int) -> int:
        return fine_tune + 1

    defs = dg.Definitions(assets=[fine_tune, tune_on_preferences])
    keys = {fine_tune.key, tune_on_preferences.key}
    cli.prepare_instance(instance)

    assert first_pool_steps(defs, keys) == [PoolStep("gpu", "fine_tune")]
    assert cli._run(defs, instance, keys)
    assert "Waiting for a slot" not in capsys.readouterr().out
    info = instance.event_log_storage.get_concurrency_info("gpu")
    assert not info.claimed_slots and not info.pending_steps


def test_pool_steps_with_no_first_one_are_left_to_the_executor() -> None:
    @dg.asset(pool="gpu")
    def fine_tune_a() -> None: ...

    @dg.asset(pool="gpu")
    def fine_tune_b() -> None: ...

    defs = dg.Definitions(assets=[fine_tune_a, fine_tune_b])

    assert first_pool_steps(defs, {fine_tune_a.key, fine_tune_b.key}) == []
    assert first_pool_steps(defs, {fine_tune_b.key}) == [PoolStep("gpu", "fine_tune_b")]


def test_the_graph_claims_the_gpu_for_training_only() -> None:
    defs = build_definitions(load_profile(TINY_PROFILE))
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())

    assert first_pool_steps(defs, keys) == [PoolStep("gpu", "qlora_adapter")]
