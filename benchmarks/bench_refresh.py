"""What `make refresh` (`llm-assets materialize --stale-only`) re-makes, and how long it takes,
against re-making every stale asset with everything below it (what "materialize stale and
downstream" did before staleness was judged wave by wave).

    .venv/bin/python benchmarks/bench_refresh.py                       # conf/tiny.yaml
    .venv/bin/python benchmarks/bench_refresh.py --profile llm_assets_tests/profiles/tiny.yaml

One fresh instance: the whole graph is materialized once, then
1. nothing changed: `--stale-only` must re-make nothing and train nothing;
2. a report setting changed (`evaluation.bootstrap_samples`): only `eval_report` (and what reads
   it) is re-made;
3. a cleaning setting changed that keeps the same corpus (`cleaning.min_chars` 20 -> 19):
   cleaning is re-made, gives the same data, and nothing below it re-runs; the peer then
   re-makes cleaning and all its descendants from the same state.
Prints a table and writes benchmarks/results/bench_refresh.json.
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
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import instance_at, profile_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _cli(home: Path, profile: Path, *args: str) -> tuple[float, str]:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LLM_ASSETS_PROFILE": str(profile),
        "LLM_ASSETS_STATE_DIR": str(home / "var"),
    }
    command = [str(Path(sys.executable).parent / "llm-assets"), "materialize", *args]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"llm-assets materialize {' '.join(args)} failed")
    return seconds, done.stdout


def _materialized_since(home: Path, after: float) -> list[str]:
    """Assets materialized after the wall-clock time `after`."""
    import dagster as dg

    with instance_at(home) as instance:
        made = {
            key.to_user_string()
            for key in instance.get_asset_keys()
            if instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_timestamp=after), limit=1
            ).records
        }
    return sorted(made)


def _changed_profile(profile: Path, section: str, key: str, value: Any) -> None:
    raw = yaml.safe_load(profile.read_text())
    raw.setdefault(section, {})[key] = value
    profile.write_text(yaml.safe_dump(raw))


def _step(home: Path, profile: Path, name: str, *args: str) -> dict[str, Any]:
    started = time.time()
    seconds, output = _cli(home, profile, *args)
    made = _materialized_since(home, started)
    print(f"{name}: {seconds:.1f} s, made {made}", flush=True)
    return {
        "scenario": name,
        "command": "llm-assets materialize " + " ".join(args),
        "seconds": round(seconds, 1),
        "assets_made": made,
        "trained": "qlora_adapter" in made,
        "printed": output.strip().splitlines()[-3:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "tiny.yaml")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_refresh.json"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-refresh-") as tmp:
        home = Path(tmp)
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        profile = profile_for(args.profile, "in_process", home)
        full, _ = _cli(home, profile)
        rows = [_step(home, profile, "nothing changed", "--stale-only")]
        _changed_profile(profile, "evaluation", "bootstrap_samples", 999)
        rows.append(_step(home, profile, "evaluation.bootstrap_samples", "--stale-only"))
        _changed_profile(profile, "cleaning", "min_chars", 19)
        rows.append(_step(home, profile, "cleaning.min_chars (same corpus)", "--stale-only"))
        _changed_profile(profile, "cleaning", "min_chars", 18)
        rows.append(
            _step(
                home, profile, "peer: cleaning and everything below", "--select", "cleaned_corpus*"
            )
        )

    print(f"\nwhole graph first: {full:.0f} s ({args.profile})\n")
    print(f"{'scenario':<40} {'seconds':>8} {'assets':>7} {'trained':>8}")
    for row in rows:
        print(
            f"{row['scenario']:<40} {row['seconds']:>8.1f} {len(row['assets_made']):>7} "
            f"{'yes' if row['trained'] else 'no':>8}"
        )
    ratio = rows[3]["seconds"] / rows[2]["seconds"]
    print(f"\npeer / wave-by-wave refresh after a cleaning change: {ratio:.1f}x the time")
    args.output.write_text(
        json.dumps(
            {
                "profile": str(args.profile.relative_to(ROOT)),
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2),
                },
                "whole_graph_seconds": round(full, 1),
                "scenarios": rows,
                "peer_over_refresh_seconds": round(ratio, 2),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
