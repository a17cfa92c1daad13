"""Which assets a materialization needs: the selection, plus upstream that was never made, and
optionally only what is stale."""

from collections.abc import Iterable

import dagster as dg

# Dagster's stale-status resolver is the one the UI's "Materialize stale" button uses; it is not
# in the public API, so this module is the only place that touches it.
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime


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


def _resolver(defs: dg.Definitions, instance: dg.DagsterInstance) -> CachingStaleStatusResolver:
    graph = defs.resolve_asset_graph()
    assert isinstance(graph, AssetGraph)
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    return CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)


def stale_status(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: Iterable[dg.AssetKey]
) -> dict[dg.AssetKey, StaleStatus]:
    resolver = _resolver(defs, instance)
    return {key: resolver.get_status(key) for key in keys}


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
    """The assets of `keys` that are stale or missing, plus their descendants within `keys`:
    Dagster calls a child fresh until its stale parent is re-made, but it will be out of date
    the moment that happens, so one run does both."""
    graph = defs.resolve_asset_graph()
    statuses = stale_status(defs, instance, keys)
    needed = {key for key, status in statuses.items() if status != StaleStatus.FRESH}
    frontier = list(needed)
    while frontier:
        for child in graph.get(frontier.pop()).child_keys:
            if child in keys and child not in needed:
                needed.add(child)
                frontier.append(child)
    return with_execution_siblings(defs, needed)


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
