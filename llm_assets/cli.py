"""`llm-assets`: materialize the graph, check profiles, show where things are.

llm-assets materialize                      # every asset of $LLM_ASSETS_PROFILE
llm-assets materialize --select '+eval_report' --stale-only
llm-assets check-profile conf/*.yaml
llm-assets ask "How do I restore a deleted file?" -k 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from llm_assets.settings import (
    DEFAULT_PROFILE_PATH,
    PROFILE_ENV_VAR,
    PROJECT_ROOT,
    ProfileError,
    load_profile,
    state_dir,
)


def _where() -> str:
    root = state_dir()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    return "\n".join(
        [
            f"  asset values (Parquet, datasets, JSON): {root / 'assets'}",
            f"  models, adapters, reports, exports:     {root / 'artifacts'}",
            f"  Dagster instance (DAGSTER_HOME):       {os.environ.get('DAGSTER_HOME', '(unset)')}",
            f"  MLflow tracking URI:                   {uri}",
            "",
            "  Dagster UI: make dev     -> http://127.0.0.1:3000",
            "  MLflow UI:  make mlflow  -> http://127.0.0.1:5000",
        ]
    )


def materialize(args: argparse.Namespace) -> int:
    import dagster as dg

    from llm_assets.defs import build_definitions
    from llm_assets.defs.selection import (
        only_stale_or_missing,
        resolve_selection,
        with_missing_upstream,
    )

    profile_path = Path(
        args.profile or os.environ.get(PROFILE_ENV_VAR) or DEFAULT_PROFILE_PATH
    ).resolve()
    profile = load_profile(profile_path)
    # The repository's dagster.yaml keeps state under var/ relative to DAGSTER_HOME.
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT))
    os.chdir(os.environ["DAGSTER_HOME"])
    defs = build_definitions(profile)
    instance = dg.DagsterInstance.get()
    wanted = with_missing_upstream(defs, instance, resolve_selection(defs, args.select))
    graph = defs.resolve_asset_graph()
    source_keys = {key for key in wanted if graph.get(key).group_name == "sources"}
    started = time.perf_counter()
    if args.stale_only:
        # Sources are re-read first (cheap): their data versions tell what changed downstream.
        if source_keys:
            _run(defs, instance, source_keys)
        wanted = only_stale_or_missing(defs, instance, wanted - source_keys)
        if not wanted:
            print("Nothing is stale: every selected asset is up to date.")
            return 0
    ok = _run(defs, instance, wanted)
    outcome = "Materialized" if ok else "FAILED"
    seconds = time.perf_counter() - started
    print(f"\n{outcome}: {len(wanted)} assets in {seconds:.0f} s (profile {profile_path})")
    print(_where())
    return 0 if ok else 1


def _run(defs, instance, keys) -> bool:  # type: ignore[no-untyped-def]
    import dagster as dg

    assets = list(defs.assets or [])
    checks = list(defs.asset_checks or [])
    result = dg.materialize(
        [*assets, *checks],
        instance=instance,
        resources=defs.resources,
        selection=sorted(keys, key=lambda key: key.to_user_string()),
        raise_on_error=False,
        tags={"llm_assets/launched_by": "cli"},
    )
    names = ", ".join(sorted(key.to_user_string() for key in keys))
    print(f"run {result.run_id}: {'success' if result.success else 'FAILED'} ({names})")
    return bool(result.success)


def check_profile(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.paths:
        try:
            load_profile(path)
            print(f"ok: {path}")
        except ProfileError as error:
            print(error, file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def ask(args: argparse.Namespace) -> int:
    """Print the chunks of the latest materialized rag_index closest to the question."""
    import json

    from llm_assets.rag.retrieval import read_manifest, retrieve

    path = Path(args.index) if args.index else None
    try:
        manifest = read_manifest(path)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    hits = retrieve(args.question, args.k, manifest_path=path)
    if args.json:
        print(json.dumps([hit.__dict__ for hit in hits], indent=2))
        return 0
    print(f"{len(hits)} chunks of {manifest['chunks']} ({manifest['store']}, {manifest['model']})")
    for rank, hit in enumerate(hits, start=1):
        where = f"{hit.uri} > {hit.heading}" if hit.heading else hit.uri
        snippet = " ".join(hit.text.split())
        print(f"\n{rank}. {hit.score:.3f}  {hit.chunk_id}  ({where})")
        print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="llm-assets", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("materialize", help="materialize assets into the local instance")
    run.add_argument("--select", default="*", help="Dagster asset selection (default: all)")
    run.add_argument("--profile", default=None, help=f"profile path (default: ${PROFILE_ENV_VAR})")
    run.add_argument(
        "--stale-only",
        action="store_true",
        help="skip assets whose code and upstream data are unchanged",
    )
    run.set_defaults(handler=materialize)
    check = commands.add_parser("check-profile", help="validate profiles")
    check.add_argument("paths", nargs="+", type=Path)
    check.set_defaults(handler=check_profile)
    question = commands.add_parser("ask", help="search the latest rag_index from the shell")
    question.add_argument("question")
    question.add_argument("-k", type=int, default=5, help="chunks to show (default: 5)")
    question.add_argument(
        "--index", default=None, help="rag_index manifest (default: the latest materialized)"
    )
    question.add_argument("--json", action="store_true", help="print the hits as JSON")
    question.set_defaults(handler=ask)
    where = commands.add_parser("where", help="print where outputs and UIs are")
    where.set_defaults(handler=lambda _: print(_where()) or 0)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except ProfileError as error:
        print(error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
