"""Whether an asset is out of date, judged from what Dagster records on each materialization
(the public data-versioning tags), never from Dagster's private stale-status resolver."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import dagster as dg

# What Dagster writes on every materialization (documented under "data versioning"): the
# code version the asset had, its data version, and the data version of each input it read.
CODE_VERSION_TAG = "dagster/code_version"
DATA_VERSION_TAG = "dagster/data_version"
INPUT_DATA_VERSION_TAG = "dagster/input_data_version/"
INPUT_EVENT_POINTER_TAG = "dagster/input_event_pointer/"


class ReadableAssetGraph(Protocol):
    """What staleness reads of an asset graph: the one of a `Definitions`
    (`defs.resolve_asset_graph()`) or the one an automation condition is evaluated on."""

    def get(self, key: dg.AssetKey) -> Any: ...

    def has(self, key: dg.AssetKey) -> bool: ...


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


def own_reasons(
    graph: ReadableAssetGraph, recorded: RecordedVersions, key: dg.AssetKey
) -> tuple[str, ...]:
    """Why `key` itself is out of date (never made, code version changed, an input has new data
    since it was made); empty when it is up to date with its code and inputs."""
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
        if graph.has(parent):
            reasons += _input_reasons(graph, recorded, tags, parent)
    return tuple(reasons)


def _input_reasons(
    graph: ReadableAssetGraph,
    recorded: RecordedVersions,
    tags: dict[str, str],
    parent: dg.AssetKey,
) -> list[str]:
    """Whether the input `parent` has new data since the materialization tagged `tags`."""
    name = parent.to_user_string()
    if graph.get(parent).partitions_def is not None:
        pointer = tags.get(f"{INPUT_EVENT_POINTER_TAG}{name}")
        if pointer is None:
            return [f"{name} was not an input when it was made"]
        if changed := recorded.partitions_changed_since(parent, int(pointer)):
            return [f"{name} has new data in partitions {changed}"]
        return []
    current = (recorded.latest(parent) or {}).get(DATA_VERSION_TAG)
    if current is not None and tags.get(f"{INPUT_DATA_VERSION_TAG}{name}") != current:
        return [f"{name} has new data"]
    return []


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
            found[key] = Staleness(own_reasons(graph, recorded, key), upstream)
        return found[key]

    return {key: visit(key) for key in keys}
