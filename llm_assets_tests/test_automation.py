"""The automation condition requests what is out of date, and only that: after a run nothing;
after a setting changed, the assets that read it; after those are re-made with new data, the
assets that read them. The real graph of the default profile, materialized as stand-ins (see
test_staleness.py)."""

import json
import subprocess
import sys
import types
from pathlib import Path

import dagster as dg
import pytest

from llm_assets.defs import build_definitions
from llm_assets.defs.automation import QUARTERLY_GROUPS, SENSOR_NAME, requested_by_automation
from llm_assets.defs.resources import default_resources
from llm_assets.settings import Profile, load_profile
from llm_assets_tests.test_staleness import (
    DEFAULT_PROFILE,
    _materialize_everything,
    _readers,
    _stale,
    _stand_ins,
    changed_setting,
    leaf_settings,
    perturbed,
)


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


# Settings that define partitions rather than what a partition holds.
PARTITIONING_SETTINGS = {"feedback.first_quarter"}


def _partitioned(defs: dg.Definitions) -> set[dg.AssetKey]:
    return {spec.key for spec in defs.resolve_all_asset_specs() if spec.partitions_def}


def _everything(defs: dg.Definitions) -> set[dg.AssetKey]:
    return {spec.key for spec in defs.resolve_all_asset_specs()}


def _names(keys: set[dg.AssetKey]) -> set[str]:
    return {key.to_user_string() for key in keys}


def test_nothing_is_requested_after_a_run(materialized) -> None:  # type: ignore[no-untyped-def]
    defs = materialized.defs
    assert requested_by_automation(defs, materialized.instance, _everything(defs)) == set()


def test_a_changed_setting_requests_exactly_the_assets_out_of_date_themselves(materialized) -> None:  # type: ignore[no-untyped-def]
    profile: Profile = materialized.profile
    checked = 0
    for leaf in leaf_settings(profile)[::9]:
        defs = build_definitions(changed_setting(profile, leaf), resources=materialized.resources)
        requested = requested_by_automation(defs, materialized.instance, _everything(defs))
        if leaf in PARTITIONING_SETTINGS:
            # Another first quarter makes other quarters: automation asks for the partitions
            # never made, of every partitioned asset, while nothing made is out of date.
            assert _names(requested) == _names(_partitioned(defs)), leaf
            assert _stale(defs, materialized.instance, own=True) == set(), leaf
            continue
        assert _names(requested) == _stale(defs, materialized.instance, own=True), leaf
        assert _names(requested) == _names(_readers(defs, leaf)), leaf
        checked += bool(requested)
    assert checked > 10


def test_refresh_goes_in_waves_as_new_data_arrives(tmp_path) -> None:  # type: ignore[no-untyped-def]
    profile = load_profile(DEFAULT_PROFILE)
    resources = default_resources(tmp_path / "state")
    defs = build_definitions(profile, resources=resources)
    with dg.instance_for_test() as instance:
        _materialize_everything(defs, instance)
        changed = perturbed(profile, "cleaning.min_chars", profile.base_dir)
        assert isinstance(changed, Profile)
        defs = build_definitions(changed, resources=resources)
        first = requested_by_automation(defs, instance, _everything(defs))
        assert "cleaned_corpus" in _names(first) and "sft_pairs" not in _names(first)

        # The cleaning step re-made with new data: what reads its outputs is requested next.
        stand_ins = _stand_ins(defs)
        cleaned = [spec for spec in defs.resolve_all_asset_specs() if spec.key in first]

        @dg.multi_asset(specs=cleaned, name="recleaned", can_subset=True)
        def recleaned(context: dg.AssetExecutionContext):  # type: ignore[no-untyped-def]
            for key in context.selected_asset_keys:
                yield dg.MaterializeResult(asset_key=key, data_version=dg.DataVersion("new"))

        others = [a for a in stand_ins if not set(a.keys) & first]
        assert dg.materialize(
            [recleaned, *others], instance=instance, selection=sorted(first)
        ).success
        second = requested_by_automation(defs, instance, _everything(defs))
        graph = defs.resolve_asset_graph()
        children = {child for key in first for child in graph.get(key).child_keys} - first
        assert second and second <= children | {
            sibling for key in second for sibling in graph.get(key).execution_set_asset_keys
        }
        assert "sft_pairs" in _names(second)


def test_the_sensor_ships_running_and_leaves_fine_tuning_to_the_quarterly_run() -> None:
    defs = build_definitions(load_profile(DEFAULT_PROFILE))
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    targeted = sensor.asset_selection.resolve(graph)  # type: ignore[union-attr]
    assert dg.AssetKey("cleaned_corpus") in targeted and dg.AssetKey("eval_report") in targeted
    for key in graph.get_all_asset_keys():
        if graph.get(key).group_name in QUARTERLY_GROUPS:
            assert key not in targeted, key
    # Every asset carries the condition, so the UI shows why it would run.
    assert all(spec.automation_condition for spec in defs.resolve_all_asset_specs())


def sensor_requests_after_a_cleaning_change(state: str) -> list[str]:
    """What the sensor asks to run after `cleaning.min_chars` changed on a made graph."""
    profile = load_profile(DEFAULT_PROFILE)
    resources = default_resources(Path(state))
    with dg.instance_for_test() as instance:
        _materialize_everything(build_definitions(profile, resources=resources), instance)
        changed = perturbed(profile, "cleaning.min_chars", profile.base_dir)
        assert isinstance(changed, Profile)
        defs = build_definitions(changed, resources=resources)
        sensor = defs.resolve_sensor_def(SENSOR_NAME)
        with dg.build_sensor_context(instance=instance, definitions=defs) as context:
            result = sensor.evaluate_tick(context)
    return sorted(
        {key.to_user_string() for run in result.run_requests for key in run.asset_selection or []}
    )


def test_the_sensor_requests_the_step_a_changed_setting_made_out_of_date(tmp_path: Path) -> None:
    # In a process of its own: a sensor evaluated in tests leaves Dagster's current
    # definitions-state storage pointing at its closed instance.
    code = (
        "import json, sys; from llm_assets_tests.test_automation import "
        "sensor_requests_after_a_cleaning_change as requests; "
        "print(json.dumps(requests(sys.argv[1])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        "cleaned_corpus",
        "cleaning_ledger",
        "near_duplicate_index",
    ]
