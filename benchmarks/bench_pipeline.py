"""How long the whole graph takes to materialize, step by step, in-process against multiprocess.

    .venv/bin/python benchmarks/bench_pipeline.py                      # conf/tiny.yaml
    .venv/bin/python benchmarks/bench_pipeline.py --profile llm_assets_tests/profiles/tiny.yaml
    .venv/bin/python benchmarks/bench_pipeline.py --profile conf/smollm2.yaml \
        --executors in_process --output benchmarks/results/bench_pipeline_smollm2.json

Each executor materializes every asset of the same profile into its own fresh Dagster instance
and state folder, launched the way the UI launches runs (`dagster asset materialize`, on the
malloc `execution.allocator` names, as `make dev` starts Dagster). Prints a table and writes
benchmarks/results/bench_pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXECUTORS = ("in_process", "multiprocess")


def profile_for(profile_path: Path, executor: str, folder: Path) -> Path:
    """A copy of the profile with absolute source paths and the given executor."""
    from llm_assets.settings import load_profile

    profile = load_profile(profile_path)
    raw = yaml.safe_load(profile_path.read_text())
    for source, validated in zip(raw["sources"], profile.sources, strict=True):
        source["path"] = profile.source_glob(validated)
    # Files named relative to the profile stay where they are.
    for (section, key), path in profile.named_files().items():
        raw[section][key] = str(path)
    raw["execution"] = {"executor": executor, "max_concurrent": os.cpu_count() or 2}
    path = folder / "profile.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def planned_runs(profile_path: Path) -> list[tuple[list[str], str | None]]:
    """The runs `make run` would make for every asset of the profile: one per quarter of
    feedback, then one for the rest (Dagster's CLI cannot mix partitioned and unpartitioned
    assets in one run)."""
    import dagster as dg

    from llm_assets.defs import build_definitions
    from llm_assets.defs.selection import run_plan
    from llm_assets.settings import load_profile

    defs = build_definitions(load_profile(profile_path))
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    with dg.DagsterInstance.ephemeral() as instance:
        plan = run_plan(defs, instance, keys)
    return [(sorted(key.to_user_string() for key in keys), part) for keys, part in plan]


@contextmanager
def instance_at(home: Path) -> Iterator[Any]:
    """The Dagster instance of DAGSTER_HOME `home` (its dagster.yaml names folders relative
    to it), opened from there; the environment and folder are restored after."""
    import dagster as dg

    previous_home = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    cwd = os.getcwd()
    os.chdir(home)
    try:
        with dg.DagsterInstance.get() as instance:
            yield instance
    finally:
        os.chdir(cwd)
        if previous_home is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = previous_home


def with_profile_allocator(environment: Any, profile_path: Path) -> dict[str, str]:
    """`environment` preloading the malloc `execution.allocator` names, as `make dev` starts
    the Dagster processes whose runs the UI launches."""
    from llm_assets.allocator import allocator_library, preload_environment
    from llm_assets.settings import load_profile

    setting = load_profile(profile_path).execution.allocator
    library = allocator_library(setting, "execution.allocator")[1]
    return preload_environment(environment, library) or dict(environment)


def materialize(profile_path: Path, executor: str, keep: Path | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{executor}-") as tmp:
        home = keep / executor if keep else Path(tmp)
        if home.exists():
            raise SystemExit(f"{home} exists: --keep-state needs a new folder")
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        bench_profile = profile_for(profile_path, executor, home)
        env = {
            **with_profile_allocator(os.environ, bench_profile),
            "DAGSTER_HOME": str(home),
            "LLM_ASSETS_PROFILE": str(bench_profile),
            "LLM_ASSETS_STATE_DIR": str(home / "var"),
        }
        dagster = str(Path(sys.executable).parent / "dagster")
        started = time.perf_counter()
        for assets, partition in planned_runs(bench_profile):
            command = [dagster, "asset", "materialize", "-m", "llm_assets.definitions"]
            command += ["--select", ",".join(assets)]
            command += ["--partition", partition] if partition else []
            completed = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True)
            if completed.returncode != 0:
                print(completed.stderr[-4000:], file=sys.stderr)
                raise SystemExit(f"{executor}: materialization failed ({partition or 'main run'})")
        wall = time.perf_counter() - started
        with instance_at(home) as instance:
            runs = instance.get_runs()
            steps: dict[str, float] = {}
            for run in runs:
                for stat in instance.get_run_step_stats(run.run_id):
                    seconds = (stat.end_time or 0) - (stat.start_time or 0)
                    steps[stat.step_key] = round(steps.get(stat.step_key, 0.0) + seconds, 2)
    return {
        "wall_seconds": round(wall, 1),
        "runs": len(runs),
        "allocator": env.get("LD_PRELOAD") or "system",
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "tiny.yaml")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_pipeline.json"
    )
    parser.add_argument(
        "--executors",
        nargs="+",
        choices=EXECUTORS,
        default=list(EXECUTORS),
        help="executors to time (default: both; one halves the time of a long profile)",
    )
    parser.add_argument(
        "--keep-state",
        type=Path,
        default=None,
        help="keep each executor's instance and outputs in <folder>/<executor> (reports, models)",
    )
    args = parser.parse_args()
    executors: list[str] = args.executors

    results = {
        executor: materialize(args.profile.resolve(), executor, args.keep_state)
        for executor in executors
    }
    steps = sorted(set().union(*(results[e]["steps"] for e in executors)))  # type: ignore[arg-type]
    print(f"\nprofile: {args.profile}   machine: {os.cpu_count()} cores, {platform.machine()}\n")
    print(f"{'step':58}" + "".join(f" {e + ' s':>15}" for e in executors))
    for step in steps:
        cells = [results[e]["steps"].get(step, float("nan")) for e in executors]  # type: ignore[union-attr]
        print(f"{step:58}" + "".join(f" {cell:>15.2f}" for cell in cells))
    walls = [float(results[e]["wall_seconds"]) for e in executors]  # type: ignore[arg-type]
    print(f"{'WALL CLOCK (process start to finish)':58}" + "".join(f" {w:>15.1f}" for w in walls))
    summary: dict[str, object] = {
        "profile": str(args.profile),
        "cores": os.cpu_count(),
        "results": results,
        "command": " ".join(["python", "benchmarks/bench_pipeline.py", *sys.argv[1:]]),
    }
    if len(walls) == 2:
        ratio = walls[1] / walls[0]
        print(f"\nmultiprocess / in_process wall-clock ratio: {ratio:.2f}")
        summary["multiprocess_over_in_process"] = round(ratio, 3)
    from llm_assets.storage import atomic_file

    with atomic_file(args.output) as temporary:
        temporary.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
