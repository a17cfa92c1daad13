"""Which assets a materialization needs: the selection, plus upstream that was never made, and
optionally only what is out of date, judged from what Dagster records on each materialization
(the public data-versioning tags), never from Dagster's private stale-status resolver."""

from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg

# What Dagster writes on every materialization (documented under "data versioning"): the
# code version the asset had, its data version, and the data version of each input it read.
CODE_VERSION_TAG = "dagster/code_version"
DATA_VERSION_TAG = "dagster/data_version"
INPUT_DATA_VERSION_TAG = "dagster/input_data_version/"
INPUT_EVENT_POINTER_TAG = "dagster/input_event_pointer/"


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


@dataclass(frozen=True)
class Staleness:
    """Why an asset is out of date. `own` reasons are about the asset itself (never made, code
    version changed, an input's data changed since it was made); `upstream` names inputs that
    are out of date, so it will be too once they are re-made."""

    own: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()

    @property
    def fresh(self) -> bool:
        return not self.own and not self.upstream


def _tags(record: dg.EventLogRecord | dg.EventLogEntry | None) -> dict[str, str] | None:
    materialization = record.asset_materialization if record else None
    return dict(materialization.tags or {}) if materialization else None


class RecordedVersions:
    """What the instance recorded on the materializations of each asset, read once per asset:
    the code, data and input data versions staleness compares."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self._latest: dict[dg.AssetKey, dict[str, str] | None] = {}
        self._partitions: dict[dg.AssetKey, dict[str, dict[str, str]]] = {}
        self._changed: dict[tuple[dg.AssetKey, int], list[str]] = {}

    def latest(self, key: dg.AssetKey) -> dict[str, str] | None:
        """Tags of the latest materialization of `key` (any partition), None if never."""
        if key not in self._latest:
            self._latest[key] = _tags(self.instance.get_latest_materialization_event(key))
        return self._latest[key]

    def by_partition(self, key: dg.AssetKey) -> dict[str, dict[str, str]]:
        """Tags of the latest materialization of each partition of `key`."""
        if key not in self._partitions:
            found = {}
            for partition in sorted(self.instance.get_materialized_partitions(key)):
                records = self.instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
                ).records
                found[partition] = _tags(records[0] if records else None) or {}
            self._partitions[key] = found
        return self._partitions[key]

    def partitions_changed_since(self, key: dg.AssetKey, storage_id: int) -> list[str]:
        """Partitions of `key` materialized after `storage_id` with a data version other than
        the one they had then (or that did not exist then)."""
        if (key, storage_id) not in self._changed:
            changed = set()
            newer = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=storage_id), limit=10_000
            ).records
            for record in newer:
                before = self.instance.fetch_materializations(
                    dg.AssetRecordsFilter(
                        asset_key=key,
                        asset_partitions=[record.partition_key] if record.partition_key else None,
                        before_storage_id=storage_id + 1,
                    ),
                    limit=1,
                ).records
                now = (_tags(record) or {}).get(DATA_VERSION_TAG)
                then = (_tags(before[0]) or {}).get(DATA_VERSION_TAG) if before else None
                if now is None or now != then:
                    changed.add(record.partition_key or "")
            self._changed[(key, storage_id)] = sorted(changed)
        return self._changed[(key, storage_id)]


def _own_reasons(
    defs: dg.Definitions, recorded: RecordedVersions, key: dg.AssetKey
) -> tuple[str, ...]:
    graph = defs.resolve_asset_graph()
    node = graph.get(key)
    if node.partitions_def is not None:
        partitions = recorded.by_partition(key)
        if not partitions:
            return ("never materialized",)
        versions = {str(tags.get(CODE_VERSION_TAG)) for tags in partitions.values()}
        if versions - {node.code_version}:
            return (f"code version changed ({', '.join(sorted(versions))} -> {node.code_version})",)
        return ()
    tags = recorded.latest(key)
    if tags is None:
        return ("never materialized",)
    reasons = []
    was = tags.get(CODE_VERSION_TAG)
    if was != node.code_version:
        reasons.append(f"code version changed ({was} -> {node.code_version})")
    for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string()):
        if not graph.has(parent):
            continue
        name = parent.to_user_string()
        if graph.get(parent).partitions_def is not None:
            pointer = tags.get(f"{INPUT_EVENT_POINTER_TAG}{name}")
            if pointer is None:
                reasons.append(f"{name} was not an input when it was made")
            elif changed := recorded.partitions_changed_since(parent, int(pointer)):
                reasons.append(f"{name} has new data in partitions {changed}")
            continue
        current = (recorded.latest(parent) or {}).get(DATA_VERSION_TAG)
        if current is not None and tags.get(f"{INPUT_DATA_VERSION_TAG}{name}") != current:
            reasons.append(f"{name} has new data")
    return tuple(reasons)


def staleness(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: Iterable[dg.AssetKey],
    recorded: RecordedVersions | None = None,
) -> dict[dg.AssetKey, Staleness]:
    """Whether each of `keys` is up to date with its code and inputs, from the versions Dagster
    recorded on each materialization; an asset is also out of date when an input is. Pass
    `recorded` to reuse what was read from `instance` (nothing was materialized since)."""
    graph = defs.resolve_asset_graph()
    recorded = recorded or RecordedVersions(instance)
    found: dict[dg.AssetKey, Staleness] = {}

    def visit(key: dg.AssetKey) -> Staleness:
        if key not in found:
            parents = [parent for parent in graph.get(key).parent_keys if graph.has(parent)]
            upstream = tuple(
                sorted(parent.to_user_string() for parent in parents if not visit(parent).fresh)
            )
            found[key] = Staleness(_own_reasons(defs, recorded, key), upstream)
        return found[key]

    return {key: visit(key) for key in keys}


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
