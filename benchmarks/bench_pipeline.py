"""How long the whole graph takes to materialize, step by step, in-process against multiprocess.

    .venv/bin/python benchmarks/bench_pipeline.py                      # conf/tiny.yaml
    .venv/bin/python benchmarks/bench_pipeline.py --profile llm_assets_tests/profiles/tiny.yaml
    .venv/bin/python benchmarks/bench_pipeline.py --profile conf/smollm2.yaml \
        --executors in_process --output benchmarks/results/bench_pipeline_smollm2.json
    .venv/bin/python benchmarks/bench_pipeline.py --profile conf/smollm2.yaml \
        --executors in_process --baseline e84b3f9 --rounds 2 \
        --output benchmarks/results/bench_pipeline_smollm2_against_e84b3f9.json

Each executor materializes every asset of the same profile into its own fresh Dagster instance
and state folder, launched the way the UI launches runs (`dagster asset materialize`, on the
malloc `execution.allocator` names, as `make dev` starts Dagster). Prints a table and writes
benchmarks/results/bench_pipeline.json.

With `--baseline REV`, the graph of the working tree is timed against the graph of git
revision REV on the same machine in the same run, because a shared 2-core host's speed moves by
10-30 % from hour to hour and a time from another day compares hosts, not code. REV's files are
extracted from git into a temporary folder and REV's own copy of this script times them (its
code imported through PYTHONPATH, in this virtual environment, so REV's dependencies must be
installed here); its profile is the file at the same path in REV. The two alternate, baseline
first in odd rounds and last in even ones, so a drift of the host's speed weighs on both; the
table gives each side's median and the ratio of the medians, and the JSON every round.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median
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


def materialize(profile_path: Path, executor: str, keep: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{executor}-") as tmp:
        home = keep / executor if keep else Path(tmp)
        if keep and home.exists():
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


def git(*arguments: str) -> str:
    completed = subprocess.run(
        ["git", "-C", str(ROOT), *arguments], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"git {' '.join(arguments)}: {completed.stderr.strip()}")
    return completed.stdout.strip()


def extract_revision(revision: str, into: Path) -> str:
    """The project's files at git `revision`, written into `into`; returns the commit."""
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return commit


def materialize_revision(
    tree: Path, profile: Path, executor: str, keep: Path | None, output: Path
) -> dict[str, Any]:
    """One timing of the graph of the project extracted in `tree`, by its own copy of this
    script, on its code (PYTHONPATH) and its copy of `profile` (a path relative to the root)."""
    tree_profile = tree / profile
    if not tree_profile.is_file():
        raise SystemExit(f"the baseline has no {profile}: pass a profile both revisions hold")
    command = [sys.executable, "benchmarks/bench_pipeline.py", "--profile", str(tree_profile)]
    command += ["--executors", executor, "--output", str(output)]
    command += ["--keep-state", str(keep)] if keep else []
    python_path = os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))
    completed = subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": python_path})
    if completed.returncode != 0:
        raise SystemExit(f"the baseline's graph failed (exit {completed.returncode})")
    result: dict[str, Any] = json.loads(output.read_text())["results"][executor]
    return result


def round_order(round_index: int) -> tuple[str, str]:
    """Baseline first in odd rounds (1, 3, …), last in even ones: over two rounds a steady
    drift of the host's speed weighs on both sides alike."""
    return ("baseline", "current") if round_index % 2 == 0 else ("current", "baseline")


def against_baseline(
    profile: Path, executor: str, revision: str, rounds: int, keep: Path | None
) -> dict[str, Any]:
    """The working tree's graph and revision's, alternating for `rounds` rounds."""
    try:
        relative_profile = profile.relative_to(ROOT)
    except ValueError:
        raise SystemExit(f"{profile}: with --baseline, the profile must be inside {ROOT}") from None
    # Read before the runs: what was timed, even if the tree changes while they run.
    current = {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
    }
    timed: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        commit = extract_revision(revision, tree)
        for index in range(rounds):
            measured: dict[str, Any] = {"order": list(round_order(index))}
            for side in round_order(index):
                # The baseline's copy of this script may refuse a temporary folder that
                # exists, so it always gets a new one.
                side_keep = (keep or Path(tmp) / "states") / f"{side}-{index + 1}"
                print(f"round {index + 1}/{rounds}: {side}", file=sys.stderr, flush=True)
                if side == "baseline":
                    output = Path(tmp) / f"baseline-{index + 1}.json"
                    measured[side] = materialize_revision(
                        tree, relative_profile, executor, side_keep, output
                    )
                else:
                    measured[side] = materialize(profile, executor, side_keep)
            measured["current_over_baseline"] = round(
                measured["current"]["wall_seconds"] / measured["baseline"]["wall_seconds"], 3
            )
            timed.append(measured)
    walls = {
        side: median([float(r[side]["wall_seconds"]) for r in timed])
        for side in ("baseline", "current")
    }

    def step_median(side: str, step: str) -> float | None:
        seconds = [float(r[side]["steps"][step]) for r in timed if step in r[side]["steps"]]
        return median(seconds) if seconds else None

    step_names = sorted({step for r in timed for side in walls for step in r[side]["steps"]})
    steps = {step: {side: step_median(side, step) for side in walls} for step in step_names}
    return {
        "baseline": {"revision": revision, "commit": commit},
        "current": current,
        "executor": executor,
        "rounds": timed,
        "median_wall_seconds": walls,
        "current_over_baseline": round(walls["current"] / walls["baseline"], 3),
        "median_step_seconds": steps,
    }


def print_against_baseline(comparison: dict[str, Any]) -> None:
    def cell(value: float | None, width: int, digits: int = 2) -> str:
        return f" {value:>{width}.{digits}f}" if value is not None else f" {'-':>{width}}"

    baseline = comparison["baseline"]["commit"][:7]
    print(f"\n{'step (median s)':58} {'baseline ' + baseline:>17} {'current':>10} {'ratio':>7}")
    for step, sides in comparison["median_step_seconds"].items():
        before, now = sides["baseline"], sides["current"]
        ratio = now / before if before and now is not None else None
        print(f"{step:58}" + cell(before, 17) + cell(now, 10) + cell(ratio, 7))
    for index, measured in enumerate(comparison["rounds"], start=1):
        print(
            f"{f'WALL CLOCK, round {index} (' + ' then '.join(measured['order']) + ')':58}"
            f" {measured['baseline']['wall_seconds']:>17.1f}"
            f" {measured['current']['wall_seconds']:>10.1f}"
            f" {measured['current_over_baseline']:>7.2f}"
        )
    walls = comparison["median_wall_seconds"]
    print(
        f"{'WALL CLOCK, median':58} {walls['baseline']:>17.1f} {walls['current']:>10.1f}"
        f" {comparison['current_over_baseline']:>7.2f}"
    )


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
    parser.add_argument(
        "--baseline",
        metavar="REV",
        default=None,
        help="also time the graph of git revision REV, alternating with the working tree's, "
        "and report the ratio (one executor)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="with --baseline: how many pairs to time"
    )
    args = parser.parse_args()
    executors: list[str] = args.executors
    from llm_assets.storage import atomic_file

    described = {
        "profile": str(args.profile),
        "cores": os.cpu_count(),
        "command": " ".join(["python", "benchmarks/bench_pipeline.py", *sys.argv[1:]]),
    }

    if args.baseline:
        if len(executors) != 1 or args.rounds < 1:
            raise SystemExit("--baseline times one executor (--executors …) for --rounds ≥ 1")
        comparison = against_baseline(
            args.profile.resolve(), executors[0], args.baseline, args.rounds, args.keep_state
        )
        print(f"\nprofile: {args.profile}   machine: {os.cpu_count()} cores, {platform.machine()}")
        print_against_baseline(comparison)
        comparison |= described
        with atomic_file(args.output) as temporary:
            temporary.write_text(json.dumps(comparison, indent=2))
        print(f"wrote {args.output}")
        return

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
    summary: dict[str, object] = {**described, "results": results}
    if len(walls) == 2:
        ratio = walls[1] / walls[0]
        print(f"\nmultiprocess / in_process wall-clock ratio: {ratio:.2f}")
        summary["multiprocess_over_in_process"] = round(ratio, 3)
    with atomic_file(args.output) as temporary:
        temporary.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
