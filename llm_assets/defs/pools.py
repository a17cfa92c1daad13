"""Claiming a pool slot (`pool="gpu"`) before a CLI run starts, and waiting for one by sleeping.

Dagster's in-process executor waits for a pool slot in a loop that does not sleep (in 1.13 the
pause between checks, `interval_to_next_pending_claim_check`, is never above 0), so a blocked
step spins a core, and it only looks for Ctrl-C/SIGTERM inside steps, so it cannot be stopped
either. The CLI therefore claims the slots of the pool steps it is about to run itself, for the
run id it will start, using the instance's own slot table: the executor then finds the slot
already claimed and starts at once (one slot per pool, for the run's first step in it:
`first_pool_steps`). Waiting happens here, in `time.sleep`, which a signal
interrupts; whatever was claimed is released when the run ends or is interrupted. On the
production instance two claims never interleave (`pool_storage.py`), so two processes claiming
at the same moment cannot both get the one slot of "gpu".
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import dagster as dg

from llm_assets.defs.selection import assets_and_checks

POLL_SECONDS = 2.0
RECOVERY_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class PoolStep:
    """A step of a run that needs a slot of `pool`."""

    pool: str
    step_key: str


def _pooled_keys(assets: Iterable[Any], keys: Iterable[dg.AssetKey]) -> dict[PoolStep, set[Any]]:
    """The steps among the assets of `keys` that run in a pool (the `pool=` of their op), each
    with its asset keys among `keys`."""
    wanted = set(keys)
    steps: dict[PoolStep, set[Any]] = {}
    for asset in assets:
        if not isinstance(asset, dg.AssetsDefinition) or not (set(asset.keys) & wanted):
            continue
        pool = getattr(asset.op, "pool", None)
        if pool:
            steps.setdefault(PoolStep(pool, asset.op.name), set()).update(set(asset.keys) & wanted)
    return steps


def first_pool_steps(defs: dg.Definitions, keys: Iterable[dg.AssetKey]) -> list[PoolStep]:
    """Of the pool steps among `keys`, the one of each pool that every other step of that
    pool in the run depends on: the slot a run claims before it starts. The in-process
    executor runs a run's steps one at a time, so one slot carries the run through a pool;
    the executor claims each later step's slot itself once the step before has freed its own.
    (Claiming a slot per step blocked a run on its own claim wherever a pool has fewer slots
    than the run has steps in it: "gpu" has one, for qlora_adapter and preference_adapter.) A
    pool whose steps have no such first one gets no claim here: claiming a step the executor
    does not run first would leave the executor waiting on its own run's slot."""
    wanted = set(keys)
    pooled = _pooled_keys(assets_and_checks(defs), wanted)
    graph = defs.resolve_asset_graph()
    first = []
    for pool in sorted({step.pool for step in pooled}):
        steps = [step for step in pooled if step.pool == pool]
        pool_keys = {key for step in steps for key in pooled[step]}
        for step in steps:
            if pool_keys - pooled[step] <= _downstream(graph, pooled[step], wanted):
                first.append(step)
                break
    return first


def split_before_pools(defs: dg.Definitions, keys: set[dg.AssetKey]) -> list[set[dg.AssetKey]]:
    """`keys` as the runs to start one after the other: what does not depend on a pool step
    first, then the pool steps with what depends on them. A run claims its pool slots when it
    starts, so the GPU is not held while the cleaning and datasets before training run."""
    pooled = set().union(*_pooled_keys(assets_and_checks(defs), keys).values())
    if not pooled:
        return [keys]
    after = pooled | _downstream(defs.resolve_asset_graph(), pooled, keys)
    before = keys - after
    return [before, after] if before else [after]


def _downstream(graph: Any, keys: set[Any], within: set[Any]) -> set[Any]:
    """Every asset of `within` below `keys` in `graph`, through assets of `within` only: what
    a run of `within` computes after `keys`."""
    below: set[Any] = set()
    frontier = list(keys)
    while frontier:
        for child in graph.get(frontier.pop()).child_keys:
            if child in within and child not in below:
                below.add(child)
                frontier.append(child)
    return below


def holders_message(instance: dg.DagsterInstance, pool: str, waiting_run_id: str) -> str:
    """Who holds the slots of `pool` (run, step, status, since when) and how to free them."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    since = {(step.run_id, step.step_key): step.assigned_timestamp for step in info.pending_steps}
    lines = [
        f"Waiting for a slot of pool {pool!r} ({len(info.claimed_slots)} of {info.slot_count} "
        f"claimed) for run {waiting_run_id}. Held by:"
    ]
    for slot in info.claimed_slots:
        run = instance.get_run_by_id(slot.run_id)
        status = run.status.value if run else "no such run"
        stamp = since.get((slot.run_id, slot.step_key))
        when = f" since {stamp:%Y-%m-%d %H:%M:%S} UTC" if stamp else ""
        lines.append(f"  run {slot.run_id}, step {slot.step_key} ({status}){when}")
    lines += [
        "This run starts when a slot frees; Ctrl-C stops waiting. If the holder is dead, its",
        "slot is freed automatically (checked every 30 s); to free one by hand:",
        "  llm-assets recover --run-id <run id>   (marks it failed and frees its slots)",
    ]
    return "\n".join(lines)


@contextmanager
def claimed_pool_slots(
    instance: dg.DagsterInstance,
    run_id: str,
    steps: list[PoolStep],
    recover: Callable[[], object] = lambda: None,
    poll_seconds: float = POLL_SECONDS,
    out: TextIO = sys.stdout,
) -> Iterator[None]:
    """Claim a slot for each of `steps` under `run_id`, sleeping `poll_seconds` between tries
    while their pool is full; release them all on the way out (the run ended, failed, or a
    signal interrupted the wait). `recover` runs every `RECOVERY_EVERY_SECONDS` while waiting
    (dead holders get their slots freed). Prints who holds a pool once, when it first blocks."""
    storage = instance.event_log_storage
    if not steps or not storage.supports_global_concurrency_limits:
        yield
        return
    try:
        for step in steps:
            if _has_limit(instance, step.pool):
                _wait_for_slot(instance, run_id, step, recover, poll_seconds, out)
        yield
    finally:
        storage.free_concurrency_slots_for_run(run_id)


def _has_limit(instance: dg.DagsterInstance, pool: str) -> bool:
    """Whether `pool` has a limit, setting it to the instance's `default_limit` first when it
    has none yet (as Dagster's executor does on a pool's first use)."""
    storage = instance.event_log_storage
    default = storage.get_pool_config().default_pool_limit
    limits = {limit.name: limit for limit in storage.get_pool_limits()}
    current = limits.get(pool)
    if default is not None and (
        current is None or (current.from_default and current.limit != default)
    ):
        storage.initialize_concurrency_limit_to_default(pool)
        return True
    return current is not None


def _wait_for_slot(
    instance: dg.DagsterInstance,
    run_id: str,
    step: PoolStep,
    recover: Callable[[], object],
    poll_seconds: float,
    out: TextIO,
) -> None:
    storage = instance.event_log_storage
    told = False
    last_recovery = time.monotonic()
    started = time.monotonic()
    while True:
        if storage.claim_concurrency_slot(step.pool, run_id, step.step_key).is_claimed:
            if told:
                waited = time.monotonic() - started
                print(f"Got a slot of pool {step.pool!r} after {waited:.0f} s.", file=out)
            return
        # Not holding a place in Dagster's queue while asleep: a process killed here would
        # otherwise leave a claim that the next free slot is handed to.
        storage.free_concurrency_slot_for_step(run_id, step.step_key)
        if not told:
            print(holders_message(instance, step.pool, run_id), file=out, flush=True)
            told = True
        time.sleep(poll_seconds)
        if time.monotonic() - last_recovery >= RECOVERY_EVERY_SECONDS:
            recover()
            last_recovery = time.monotonic()
