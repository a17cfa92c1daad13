"""What a run blocked on the GPU pool costs while it waits, and whether SIGTERM stops it:
Dagster's in-process executor waiting (`dg.materialize`) against the CLI waiting
(`llm_assets.defs.pools`).

    .venv/bin/python benchmarks/bench_pool_wait.py
    .venv/bin/python benchmarks/bench_pool_wait.py --seconds 10

A fresh instance with one slot in pool `gpu`; the slot is claimed for a run id of its own, so
every run of a one-step asset in that pool blocks. Each waiter runs in a process of its own; its
CPU time is read over `--seconds` of waiting, then it is sent SIGTERM. Prints a table and writes
benchmarks/results/bench_pool_wait.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAITER = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from llm_assets import cli

    @dg.asset(pool="gpu")
    def fine_tune() -> None:
        pass

    instance = dg.DagsterInstance.get()
    print("READY", flush=True)
    if sys.argv[1] == "dagster_executor":
        dg.materialize([fine_tune], instance=instance)
    else:
        cli.prepare_instance(instance)
        try:
            cli._run(dg.Definitions(assets=[fine_tune]), instance, {fine_tune.key})
        except KeyboardInterrupt:
            sys.exit(130)
    """
)


def measure(home: Path, waiter: Path, how: str, seconds: float) -> dict[str, object]:
    import psutil

    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, str(waiter), how],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    while process.stdout.readline().strip() != "READY":
        pass
    time.sleep(10)  # past the imports and into the wait
    watched = psutil.Process(process.pid)
    before = sum(watched.cpu_times()[:2])
    time.sleep(seconds)
    cpu = sum(watched.cpu_times()[:2]) - before
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
        stopped: float | None = round(time.monotonic() - sent, 2)
    except subprocess.TimeoutExpired:
        stopped = None
        process.kill()
        process.wait()
    return {
        "waiter": how,
        "cpu_seconds": round(cpu, 3),
        "cpu_share": round(cpu / seconds, 4),
        "stopped_by_sigterm_in_seconds": stopped,
    }


def main() -> None:
    import dagster as dg

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="waiting time measured")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_pool_wait.json"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        (home / "dagster.yaml").write_text(
            f"storage:\n  sqlite:\n    base_dir: {home / 'storage'}\n"
            "telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\n"
        )
        waiter = home / "waiter.py"
        waiter.write_text(WAITER)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            storage = instance.event_log_storage
            storage.initialize_concurrency_limit_to_default("gpu")
            assert storage.claim_concurrency_slot("gpu", "holder", "fine_tune").is_claimed
            rows = [
                measure(home, waiter, how, args.seconds)
                for how in ("dagster_executor", "llm_assets_cli")
            ]
    print(f"\nA run blocked on pool 'gpu' for {args.seconds:.0f} s ({os.cpu_count()} CPUs)\n")
    print(f"{'waiter':<18} {'CPU s':>7} {'of a core':>10} {'SIGTERM':>22}")
    for row in rows:
        stopped = row["stopped_by_sigterm_in_seconds"]
        said = f"stopped in {stopped} s" if stopped is not None else "still running after 10 s"
        print(f"{row['waiter']:<18} {row['cpu_seconds']:>7} {row['cpu_share']:>10.1%} {said:>22}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "seconds_waited": args.seconds,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "dagster": dg.__version__,
        "rows": rows,
    }
    args.output.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
