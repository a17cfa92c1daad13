"""`llm-assets`: materialize the graph, check profiles, show where things are.

llm-assets materialize                      # every asset of $LLM_ASSETS_PROFILE
llm-assets materialize --select '+eval_report' --stale-only
llm-assets recover                          # runs whose process died: failed, slots freed
llm-assets check-profile conf/*.yaml
llm-assets ask "How do I restore a deleted file?" -k 5
llm-assets serve --port 8000                 # the champion, OpenAI API + chat page
llm-assets allocator                        # the malloc library materialize preloads
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from llm_assets.allocator import (
    AllocatorUnavailable,
    allocator_in_use,
    allocator_library,
    restart_with_allocator,
)
from llm_assets.settings import (
    DEFAULT_PROFILE_PATH,
    PROFILE_ENV_VAR,
    PROJECT_ROOT,
    ProfileError,
    default_tracking_uri,
    load_profile,
    resolve_profile_path,
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
    profile_path = resolve_profile_path(args.profile)
    profile = load_profile(profile_path)
    if args.as_program:
        # In-process steps (evaluation, exports) run on the profile's malloc; the process is
        # replaced, so this comes before anything heavy is imported.
        restart_with_allocator(profile.execution.allocator, "execution.allocator")

    import dagster as dg

    from llm_assets.defs import build_definitions
    from llm_assets.defs.selection import resolve_selection, with_missing_upstream

    # The repository's dagster.yaml keeps state under var/ relative to DAGSTER_HOME.
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT))
    os.chdir(os.environ["DAGSTER_HOME"])
    defs = build_definitions(profile)
    instance = dg.DagsterInstance.get()
    prepare_instance(instance, (defs.resources or {}).get("mlflow"))
    wanted = with_missing_upstream(defs, instance, resolve_selection(defs, args.select))
    graph = defs.resolve_asset_graph()
    source_keys = {key for key in wanted if graph.get(key).group_name in ("sources", "feedback")}
    started = time.perf_counter()
    if args.stale_only:
        return _refresh(defs, instance, wanted, source_keys, started, profile_path)
    ok = _run_plan(defs, instance, wanted)
    if ok is None:
        return _interrupted()
    outcome = "Materialized" if ok else "FAILED"
    seconds = time.perf_counter() - started
    print(
        f"\n{outcome}: {len(wanted)} assets in {seconds:.0f} s (profile {profile_path}, "
        f"malloc {allocator_in_use()})"
    )
    print(_where())
    return 0 if ok else 1


def _run_plan(defs, instance, keys) -> bool | None:  # type: ignore[no-untyped-def]
    """Materialize `keys`; False when a run failed, None when interrupted."""
    from llm_assets.defs.pools import split_before_pools
    from llm_assets.defs.selection import run_plan

    ok = True
    for run_keys, partition in run_plan(defs, instance, keys):
        # What precedes the GPU step runs first: the GPU run then waits for (and holds) the
        # pool only while it needs it. If the first part fails, the second does not start.
        for part in split_before_pools(defs, run_keys):
            part_ok = _run(defs, instance, part, partition)
            ok = part_ok and ok
            if _INTERRUPTED["run"]:
                return None
            if not part_ok:
                break
    return ok


def _refresh(defs, instance, wanted, source_keys, started, profile_path) -> int:  # type: ignore[no-untyped-def]
    """Re-make only what is out of date, in waves: sources (and quarters of feedback not read
    yet) first, cheaply, since their data versions tell what changed; then what the assets'
    automation condition requests (out of date themselves: llm_assets.defs.automation, the
    condition the sensor evaluates); then whatever that made out of date, until nothing is. An
    asset re-made with the same data leaves everything below it as it was."""
    from llm_assets.defs.automation import requested_by_automation
    from llm_assets.defs.selection import run_plan

    for keys, partition in run_plan(defs, instance, source_keys, only_missing_partitions=True):
        _run(defs, instance, keys, partition)
        if _INTERRUPTED["run"]:
            return _interrupted()
    done: set = set()
    while True:
        stale = requested_by_automation(defs, instance, wanted - source_keys)
        if not stale:
            break
        if stale & done:
            names = sorted(key.to_user_string() for key in stale & done)
            print(f"\nFAILED: {names} still out of date after being re-made")
            return 1
        print(f"\nOut of date: {sorted(key.to_user_string() for key in stale)}")
        ok = _run_plan(defs, instance, stale)
        if ok is None:
            return _interrupted()
        if not ok:
            print(f"\nFAILED after {time.perf_counter() - started:.0f} s (profile {profile_path})")
            return 1
        done |= stale
    seconds = time.perf_counter() - started
    if not done:
        print("Nothing is stale: every selected asset is up to date.")
        return 0
    print(f"\nRefreshed: {len(done)} assets in {seconds:.0f} s (profile {profile_path})")
    print(_where())
    return 0


def _interrupted() -> int:
    print(f"\nInterrupted: run {_INTERRUPTED['run']} stopped and marked failed; re-run to go on.")
    return 130


def prepare_instance(instance, mlflow=None) -> None:  # type: ignore[no-untyped-def]
    """Before the first run: SIGTERM (a service manager, `kill`, a closing terminal) is made to
    stop a run as Ctrl-C does (training processes stopped, run failed, slots freed), and runs
    whose process died are marked failed with their slots freed."""
    signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))
    signal.signal(signal.SIGHUP, signal.getsignal(signal.SIGINT))  # the terminal was closed
    _recover(instance, mlflow)


def _recover(instance, mlflow=None) -> None:  # type: ignore[no-untyped-def]
    """Mark runs whose process died failed and free their pool slots, saying so; with the
    `mlflow` resource, their MLflow runs (left RUNNING by a killed process) end as KILLED."""
    from llm_assets.defs.resources import MlflowUnavailable
    from llm_assets.defs.run_recovery import recover_dead_runs

    for dead in recover_dead_runs(instance):
        print(f"run {dead.run_id} ({dead.job_name}) marked failed: {dead.reason}; slots freed")
        if mlflow is None:
            continue
        try:
            ended = mlflow.end_runs_of(dead.run_id, status="KILLED")
        except MlflowUnavailable as error:
            print(f"  its MLflow runs are left as they are: {error}")
            continue
        if ended:
            print(f"  its MLflow runs marked KILLED: {', '.join(ended)}")


# The run a signal stopped, if any: no further run of the plan starts after it.
_INTERRUPTED: dict[str, str | None] = {"run": None}
CLI_JOB = "llm_assets_cli_job"


def _run(defs, instance, keys, partition=None) -> bool:  # type: ignore[no-untyped-def]
    import uuid

    import dagster as dg

    from llm_assets.defs.pools import claimed_pool_slots, first_pool_steps
    from llm_assets.defs.run_recovery import process_tags
    from llm_assets.defs.selection import assets_and_checks

    selection = sorted(keys, key=lambda key: key.to_user_string())
    job = dg.Definitions(
        jobs=[dg.define_asset_job(CLI_JOB, selection=selection)],
        assets=assets_and_checks(defs),
        resources=defs.resources,
    ).resolve_job_def(CLI_JOB)
    run_id = str(uuid.uuid4())
    # Pool slots (the GPU) are claimed here, sleeping while another run holds them, rather than
    # by the executor, whose wait spins a core and ignores signals (llm_assets/defs/pools.py).
    with claimed_pool_slots(
        instance, run_id, first_pool_steps(defs, keys), recover=lambda: _recover(instance)
    ):
        result = job.execute_in_process(
            instance=instance,
            run_id=run_id,
            raise_on_error=False,
            tags={"llm_assets/launched_by": "cli", **process_tags()},
            partition_key=partition,
        )
    names = ", ".join(key.to_user_string() for key in selection)
    where = f" [partition {partition}]" if partition else ""
    print(f"run {result.run_id}: {'success' if result.success else 'FAILED'} ({names}){where}")
    if _was_interrupted(result):
        _INTERRUPTED["run"] = result.run_id
    return bool(result.success)


def _was_interrupted(result) -> bool:  # type: ignore[no-untyped-def]
    """Whether a signal (Ctrl-C, SIGTERM) stopped the run: Dagster fails the running step with
    DagsterExecutionInterruptedError and returns normally."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            if error is not None and error.cls_name == "DagsterExecutionInterruptedError":
                return True
    return False


def recover(args: argparse.Namespace) -> int:
    """Mark runs whose process died failed and free their pool slots; with --run-id, also those
    runs, alive or not (one hung on a machine that is gone)."""
    import dagster as dg

    from llm_assets.defs.run_recovery import free_run

    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT))
    os.chdir(os.environ["DAGSTER_HOME"])
    instance = dg.DagsterInstance.get()
    for run_id in args.run_id:
        if not free_run(instance, run_id):
            print(f"no run {run_id} in {os.environ['DAGSTER_HOME']}", file=sys.stderr)
            return 2
        print(f"run {run_id}: marked failed (if it was in progress) and its slots freed")
    _recover(instance)
    return 0


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
    print(f"{len(hits)} chunks of {manifest.chunks} ({manifest.store}, {manifest.model})")
    for rank, hit in enumerate(hits, start=1):
        where = f"{hit.uri} > {hit.heading}" if hit.heading else hit.uri
        snippet = " ".join(hit.text.split())
        print(f"\n{rank}. {hit.score:.3f}  {hit.chunk_id}  ({where})")
        print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}")
    return 0


def serve(args: argparse.Namespace) -> int:
    """Serve the champion (or --model-version / --adapter) until interrupted."""
    from llm_assets.serving.models import ServedModelNotFound
    from llm_assets.serving.server import ServeOptions, ServeRefused, run_server

    profile = load_profile(args.profile)
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri and not args.adapter:
        tracking_uri = default_tracking_uri()
    options = ServeOptions(
        host=args.host or profile.serving.host,
        port=args.port or profile.serving.port,
        model_version=args.model_version,
        adapter=args.adapter,
        rag=args.rag,
        no_auth=args.no_auth,
        tracking_uri=tracking_uri,
    )
    try:
        run_server(profile, options)
    except (ServeRefused, ServedModelNotFound, FileNotFoundError) as error:
        print(error, file=sys.stderr)
        return 2
    return 0


def print_allocator(args: argparse.Namespace) -> int:
    """The library `execution.allocator` preloads on this machine (empty for glibc's malloc):
    what `make dev` sets LD_PRELOAD to for the Dagster processes it starts."""
    profile = load_profile(args.profile)
    print(allocator_library(profile.execution.allocator, "execution.allocator")[1] or "")
    return 0


def write_reference_pages(_: argparse.Namespace) -> int:
    from llm_assets.defs.reference import write_reference

    for path in write_reference(DEFAULT_PROFILE_PATH, PROJECT_ROOT / "docs" / "reference"):
        print(f"wrote {path}")
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
    rescue = commands.add_parser(
        "recover",
        help="mark runs whose process died failed and free their pool slots",
        description="Runs whose process is gone (killed, rebooted) are marked failed and their "
        "pool slots freed; `materialize` does this itself before it starts. Their checkpoints "
        "are kept: the next materialization resumes from them.",
    )
    rescue.add_argument(
        "--run-id",
        action="append",
        default=[],
        help="also this run, even if its process may be alive elsewhere (repeatable)",
    )
    rescue.set_defaults(handler=recover)
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
    server = commands.add_parser(
        "serve",
        help="OpenAI-compatible API and chat page over the champion",
        description="Needs $LLM_ASSETS_SERVE_TOKEN (the bearer token clients send) unless "
        "--no-auth is given on loopback. Exchanges and feedback go to $LLM_ASSETS_FEEDBACK_DB_URL "
        "(serving.database_url_env), else SQLite under the state folder.",
    )
    server.add_argument("--port", type=int, default=None, help="default: serving.port (8000)")
    server.add_argument("--host", default=None, help="default: serving.host (127.0.0.1)")
    server.add_argument(
        "--model-version",
        default=None,
        help="registry version number or alias (challenger, …); default: the champion",
    )
    server.add_argument(
        "--adapter", default=None, help="serve this adapter folder instead of a registry version"
    )
    server.add_argument(
        "--rag", action="store_true", help="give retrieved rag_index chunks as context"
    )
    server.add_argument(
        "--no-auth", action="store_true", help="no bearer token (only on a loopback host)"
    )
    server.add_argument("--profile", default=None, help=f"profile (default: ${PROFILE_ENV_VAR})")
    server.set_defaults(handler=serve)
    reference = commands.add_parser(
        "reference", help="rewrite docs/reference/ (profile settings, assets and checks)"
    )
    reference.set_defaults(handler=write_reference_pages)
    where = commands.add_parser("where", help="print where outputs and UIs are")
    where.set_defaults(handler=lambda _: print(_where()) or 0)
    malloc = commands.add_parser(
        "allocator",
        help="print the malloc library execution.allocator preloads here (empty: glibc's)",
    )
    malloc.add_argument("--profile", default=None, help=f"profile (default: ${PROFILE_ENV_VAR})")
    malloc.set_defaults(handler=print_allocator)
    args = parser.parse_args(argv)
    # Only a process started as `llm-assets` may replace itself (never a caller's, e.g. tests).
    args.as_program = argv is None
    try:
        return int(args.handler(args))
    except (ProfileError, AllocatorUnavailable) as error:
        print(error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nInterrupted: nothing was left claimed; re-run to continue.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
