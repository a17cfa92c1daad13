"""Staleness you can trust: change any one setting of the default profile and exactly the assets
that read it (and what is made from them) go out of date, judged by the versions Dagster records
on each materialization.

The graph is the real one (keys, dependencies, partitions, derived code versions); its assets
are materialized as stand-ins that record a fixed data version, so a change of setting shows
only through code versions, as it would after a real run.
"""

import datetime
import types
import typing
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from pydantic import BaseModel

from llm_assets.defs import build_definitions
from llm_assets.defs.resources import default_resources
from llm_assets.defs.staleness import RecordedVersions, staleness
from llm_assets.settings import AnswerTemplate, Profile, load_profile

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PROFILE = ROOT / "conf" / "smollm2.yaml"
# A source's name is its identity (the key of its raw_<name> asset): renaming one removes a
# source and adds another, which changes the graph rather than making anything stale.
IDENTITY_LEAVES = {"name"}
# Settings whose values name a source: a change must name one that exists.
SOURCE_NAMING = {
    "rag.sources": lambda profile: [profile.sources[0].name],
    "datasets.templates.by_source": lambda profile: {
        profile.sources[0].name: AnswerTemplate(task="changed")
    },
}


def leaf_settings(model: BaseModel, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf setting; sources by name (`sources.docs.path`)."""
    paths = []
    for name in type(model).model_fields:
        if not prefix and name == "base_dir":
            continue
        value, path = getattr(model, name), f"{prefix}{name}"
        if isinstance(value, BaseModel):
            paths += leaf_settings(value, f"{path}.")
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            for item in value:
                paths += [
                    leaf
                    for leaf in leaf_settings(item, f"{path}.{item.name}.")
                    if leaf.rsplit(".", 1)[-1] not in IDENTITY_LEAVES
                ]
        else:
            paths.append(path)
    return paths


def _changed(value: Any, annotation: Any, base_dir: Path, name: str) -> Any:
    """A different value of the same type."""
    if value is None and name.endswith("_file"):
        # A file setting must name a file that exists; an empty one is a change of content.
        scratch = base_dir / ".." / "var" / "test-staleness"
        scratch.mkdir(parents=True, exist_ok=True)
        (scratch / f"{name}.jsonl").touch()
        return str((scratch / f"{name}.jsonl").resolve())
    options = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return next(option for option in typing.get_args(annotation) if option != value)
    if value is None:
        kind = options[0] if options else str
        if typing.get_origin(kind) is typing.Literal:
            return typing.get_args(kind)[0]
        return {int: 1, float: 0.5, str: "changed", bool: True}.get(kind, "changed")
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.01
    if isinstance(value, str):
        # A file the profile names must still exist: the same file, spelt differently.
        if (base_dir / value).exists():
            return f"./{value}"
        literal = next((o for o in options if typing.get_origin(o) is typing.Literal), None)
        if literal is not None:
            return next(option for option in typing.get_args(literal) if option != value)
        return f"{value}-changed"
    if isinstance(value, tuple) and value and all(isinstance(v, float) for v in value):
        return (*value[:-1], value[-1] + 0.01)
    if isinstance(value, list | tuple):
        return type(value)(value[:-1]) if value else type(value)(["changed"])
    if isinstance(value, dict):
        return dict(list(value.items())[:-1]) if value else {"changed": "changed"}
    if isinstance(value, datetime.date):
        return value.replace(year=value.year - 1)
    raise TypeError(f"no perturbation for {type(value).__name__}")


def perturbed(model: BaseModel, path: str, base_dir: Path) -> BaseModel:
    """`model` with the setting at dotted `path` changed (without validation: the question is
    what goes stale, not whether the value is sensible)."""
    name, _, rest = path.partition(".")
    value = getattr(model, name)
    if isinstance(value, list) and rest:
        item_name, _, item_rest = rest.partition(".")
        items = [
            perturbed(item, item_rest, base_dir) if item.name == item_name else item
            for item in value
        ]
        return model.model_copy(update={name: items})
    if rest:
        return model.model_copy(update={name: perturbed(value, rest, base_dir)})
    annotation = type(model).model_fields[name].annotation
    return model.model_copy(update={name: _changed(value, annotation, base_dir, name)})


def changed_setting(profile: Profile, leaf: str) -> Profile:
    """`profile` with the setting at `leaf` changed to another valid value."""
    if leaf in SOURCE_NAMING:
        changed = _with_value(profile, leaf, SOURCE_NAMING[leaf](profile))
    else:
        changed = perturbed(profile, leaf, profile.base_dir)
    assert isinstance(changed, Profile)
    return changed


def _with_value(model: BaseModel, path: str, value: Any) -> BaseModel:
    name, _, rest = path.partition(".")
    if rest:
        return model.model_copy(update={name: _with_value(getattr(model, name), rest, value)})
    return model.model_copy(update={name: value})


def _stand_ins(defs: dg.Definitions) -> list[dg.AssetsDefinition]:
    made = []
    for spec in defs.resolve_all_asset_specs():

        @dg.multi_asset(specs=[spec], name=f"make_{spec.key.to_python_identifier()}")
        def make(context: dg.AssetExecutionContext):  # type: ignore[no-untyped-def]
            for key in context.selected_asset_keys:
                yield dg.MaterializeResult(asset_key=key, data_version=dg.DataVersion("same"))

        made.append(make)
    return made


def _materialize_everything(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    specs = defs.resolve_all_asset_specs()
    assets = _stand_ins(defs)
    for spec in specs:
        if spec.partitions_def is not None:
            for partition in spec.partitions_def.get_partition_keys():
                dg.materialize(
                    assets, instance=instance, selection=[spec.key], partition_key=partition
                )
    unpartitioned = [spec.key for spec in specs if spec.partitions_def is None]
    assert dg.materialize(assets, instance=instance, selection=unpartitioned).success


def _readers(defs: dg.Definitions, leaf: str) -> set[dg.AssetKey]:
    """Assets whose declared settings hold `leaf` (and do not mark it as not versioned)."""

    def covers(declared: Any, path: str) -> bool:
        return any(path == d or path.startswith(f"{d}.") for d in declared or [])

    readers = set()
    for spec in defs.resolve_all_asset_specs():
        metadata = spec.metadata
        if covers(metadata.get("settings_read"), leaf) and not covers(
            metadata.get("settings_read_not_versioned"), leaf
        ):
            readers.add(spec.key)
    return readers


def _with_descendants(defs: dg.Definitions, keys: set[dg.AssetKey]) -> set[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    found, frontier = set(keys), list(keys)
    while frontier:
        for child in graph.get(frontier.pop()).child_keys:
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


@pytest.fixture(scope="module")
def materialized(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    profile = load_profile(DEFAULT_PROFILE)
    resources = default_resources(tmp_path_factory.mktemp("state"))
    defs = build_definitions(profile, resources=resources)
    with dg.instance_for_test() as instance:
        _materialize_everything(defs, instance)
        yield types.SimpleNamespace(
            profile=profile, defs=defs, resources=resources, instance=instance
        )


def _stale(
    defs: dg.Definitions, instance: dg.DagsterInstance, recorded: Any = None, own: bool = False
) -> set[str]:
    """Assets out of date (`own`: out of date themselves, not only through an input)."""
    keys = [spec.key for spec in defs.resolve_all_asset_specs()]
    found = staleness(defs, instance, keys, recorded)
    return {
        key.to_user_string()
        for key, state in found.items()
        if (state.own if own else not state.fresh)
    }


def test_nothing_is_stale_after_a_run_or_a_no_op_rerun(materialized) -> None:  # type: ignore[no-untyped-def]
    assert _stale(materialized.defs, materialized.instance) == set()
    # The same profile loaded again, and everything made again with the same data.
    again = build_definitions(load_profile(DEFAULT_PROFILE), resources=materialized.resources)
    assert _stale(again, materialized.instance) == set()
    _materialize_everything(again, materialized.instance)
    assert _stale(again, materialized.instance) == set()


def test_every_setting_makes_exactly_its_readers_and_their_descendants_stale(materialized) -> None:  # type: ignore[no-untyped-def]
    profile: Profile = materialized.profile
    recorded = RecordedVersions(materialized.instance)
    leaves = leaf_settings(profile)
    assert len(leaves) > 200, "the default profile has a few hundred settings"
    wrong, read = [], 0
    for leaf in leaves:
        changed = changed_setting(profile, leaf)
        defs = build_definitions(changed, resources=materialized.resources)
        readers = _readers(defs, leaf)
        read += bool(readers)
        expected = {key.to_user_string() for key in _with_descendants(defs, readers)}
        stale = _stale(defs, materialized.instance, recorded)
        if stale != expected:
            wrong.append((leaf, sorted(stale - expected), sorted(expected - stale)))
    assert wrong == [], "\n".join(f"{leaf}: +{extra} -{missing}" for leaf, extra, missing in wrong)
    # Most settings are read by some asset; the rest are read by serving, tracking or the
    # executor, outside the graph.
    assert read > len(leaves) / 2


def _dagster_ui_stale(defs: dg.Definitions, instance: dg.DagsterInstance) -> set[str]:
    """What the Dagster UI shows as stale: its private resolver, used here (never in the
    package) to prove the public reading agrees with it; if a Dagster upgrade moves it, this
    test says so instead of the product breaking."""
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._time import get_current_datetime

    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,  # type: ignore[arg-type]
    )
    resolver = CachingStaleStatusResolver(
        instance=instance,
        asset_graph=graph,  # type: ignore[arg-type]
        loading_context=view,
    )
    return {
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).partitions_def is None and resolver.get_status(key) != StaleStatus.FRESH
    }


def test_public_staleness_agrees_with_the_dagster_ui(materialized) -> None:  # type: ignore[no-untyped-def]
    """The UI marks stale the assets whose own code or inputs changed, not yet what is made
    from them (that follows once they are re-made with new data): our `own` reasons."""
    profile: Profile = materialized.profile
    partitioned = {
        spec.key.to_user_string()
        for spec in materialized.defs.resolve_all_asset_specs()
        if spec.partitions_def is not None
    }
    for leaf in leaf_settings(profile)[::9]:
        if leaf in SOURCE_NAMING:
            continue
        changed = perturbed(profile, leaf, profile.base_dir)
        assert isinstance(changed, Profile)
        defs = build_definitions(changed, resources=materialized.resources)
        ours = _stale(defs, materialized.instance, own=True) - partitioned
        assert ours == _dagster_ui_stale(defs, materialized.instance), leaf
        readers = {key.to_user_string() for key in _readers(defs, leaf)}
        assert ours == readers - partitioned, leaf


def test_a_quarter_of_feedback_with_new_data_makes_cleaning_stale(tmp_path: Path) -> None:
    """Cleaning reads every quarter: a quarter re-read with the same data changes nothing, one
    with new data makes cleaning (and only through it, what follows) out of date."""
    profile = load_profile(DEFAULT_PROFILE)
    defs = build_definitions(profile, resources=default_resources(tmp_path / "state"))
    [feedback] = [s for s in defs.resolve_all_asset_specs() if s.key.path == ["feedback_records"]]
    assert feedback.partitions_def is not None
    quarter = feedback.partitions_def.get_partition_keys()[0]

    @dg.multi_asset(specs=[feedback], name="new_feedback")
    def new_feedback(context: dg.AssetExecutionContext):  # type: ignore[no-untyped-def]
        yield dg.MaterializeResult(asset_key=feedback.key, data_version=dg.DataVersion("new"))

    with dg.instance_for_test() as instance:
        _materialize_everything(defs, instance)
        stand_ins = _stand_ins(defs)
        dg.materialize(
            stand_ins, instance=instance, selection=[feedback.key], partition_key=quarter
        )
        assert _stale(defs, instance) == set()
        dg.materialize([new_feedback], instance=instance, partition_key=quarter)
        found = staleness(defs, instance, [dg.AssetKey("cleaned_corpus")])
        [reason] = found[dg.AssetKey("cleaned_corpus")].own
        assert reason == f"feedback_records has new data in partitions ['{quarter}']"
        assert _stale(defs, instance, own=True) == {
            "cleaned_corpus",
            "cleaning_ledger",
            "near_duplicate_index",
        }
