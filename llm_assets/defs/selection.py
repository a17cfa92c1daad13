"""Which assets a materialization needs: the selection, plus upstream that was never made, and
optionally only what is out of date (`llm_assets.defs.staleness`), as the runs that make them."""

from typing import Any

import dagster as dg

from llm_assets.defs.staleness import (
    ReadableAssetGraph,
    RecordedVersions,
    Staleness,
    own_reasons,
    staleness,
)

# Staleness was judged here before it had a module of its own; these names are still imported
# from here.
__all__ = [
    "ReadableAssetGraph",
    "RecordedVersions",
    "Staleness",
    "assets_and_checks",
    "only_stale_or_missing",
    "own_reasons",
    "resolve_selection",
    "run_plan",
    "staleness",
    "with_execution_siblings",
    "with_missing_upstream",
]


def assets_and_checks(defs: dg.Definitions) -> list[Any]:
    """Every asset and asset check `defs` defines: what a job over its keys is built from."""
    return [*(defs.assets or []), *(defs.asset_checks or [])]


def resolve_selection(defs: dg.Definitions, selection: str) -> set[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    keys = dg.AssetSelection.from_string(selection).resolve(graph)
    if not keys:
        raise ValueError(f"asset selection {selection!r} matches no asset")
    return with_execution_siblings(defs, set(keys))


def with_execution_siblings(defs: dg.Definitions, keys: set[dg.AssetKey]) -> set[dg.AssetKey]:
    """Assets made by one step are made together: cleaned_corpus comes with cleaning_ledger."""
    graph = defs.resolve_asset_graph()
    return {sibling for key in keys for sibling in graph.get(key).execution_set_asset_keys}


def with_missing_upstream(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: set[dg.AssetKey]
) -> set[dg.AssetKey]:
    """`keys` plus every ancestor that has never been materialized in `instance`."""
    graph = defs.resolve_asset_graph()
    needed = set(keys)
    frontier = list(keys)
    while frontier:
        for parent in graph.get(frontier.pop()).parent_keys:
            if parent in needed or not graph.has(parent):
                continue
            if instance.get_latest_materialization_event(parent) is None:
                needed.add(parent)
                frontier.append(parent)
    return with_execution_siblings(defs, needed)


def only_stale_or_missing(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: set[dg.AssetKey]
) -> set[dg.AssetKey]:
    """The assets of `keys` that are out of date themselves (never made, code changed, an
    input's data changed): what to re-make next. Their descendants are out of date only until
    these are re-made with new data; re-made with the same data, nothing below re-runs."""
    found = staleness(defs, instance, keys)
    return with_execution_siblings(defs, {key for key, state in found.items() if state.own})


def run_plan(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: set[dg.AssetKey],
    only_missing_partitions: bool = False,
) -> list[tuple[set[dg.AssetKey], str | None]]:
    """The runs that materialize `keys`: one per partition of the partitioned assets among them
    (every partition, or only those never materialized), then one for the rest. Partitioned
    assets go first because unpartitioned ones downstream read all their partitions."""
    graph = defs.resolve_asset_graph()
    partitioned = {key for key in keys if graph.get(key).partitions_def is not None}
    plan: list[tuple[set[dg.AssetKey], str | None]] = []
    partition_keys: dict[str, set[dg.AssetKey]] = {}
    for key in sorted(partitioned, key=lambda k: k.to_user_string()):
        partitions_def = graph.get(key).partitions_def
        assert partitions_def is not None
        wanted = partitions_def.get_partition_keys(dynamic_partitions_store=instance)
        if only_missing_partitions:
            done = instance.get_materialized_partitions(key)
            wanted = [partition for partition in wanted if partition not in done]
        for partition in wanted:
            partition_keys.setdefault(partition, set()).add(key)
    plan += [(assets, partition) for partition, assets in sorted(partition_keys.items())]
    if keys - partitioned:
        plan.append((keys - partitioned, None))
    return plan
