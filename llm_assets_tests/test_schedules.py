from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from llm_assets.defs import build_definitions
from llm_assets.defs.resources import default_resources
from llm_assets.defs.schedules import folders_fingerprint
from llm_assets.defs.selection import run_plan
from llm_assets.settings import load_profile


@pytest.fixture
def docs_profile(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nSync keeps vaults in step.\n")
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "sources:\n  - {name: docs, kind: documents, path: docs/*.md}\n"
        "feedback: {first_quarter: 2026-01-01}\n"
    )
    return profile


def _defs(profile: Path, tmp_path: Path) -> dg.Definitions:
    return build_definitions(load_profile(profile), resources=default_resources(tmp_path / "st"))


def test_the_quarterly_schedule_runs_the_quarter_that_just_ended(
    docs_profile: Path, tmp_path: Path
) -> None:
    defs = _defs(docs_profile, tmp_path)
    schedule = defs.resolve_schedule_def("quarterly_refinetune_schedule")
    tick = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)

    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
        [request] = schedule.evaluate_tick(context).run_requests or []

    assert schedule.cron_schedule == "0 0 1 1,4,7,10 *"
    assert request.partition_key == "2026-07-01"
    job = defs.resolve_job_def("quarterly_refinetune")
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert {"raw_docs", "feedback_records", "qlora_adapter", "eval_report"} <= selected
    assert {"champion_model", "quantized_export"} <= selected


def test_document_sensor_re_runs_cleaning_only_when_a_file_changes(
    docs_profile: Path, tmp_path: Path
) -> None:
    defs = _defs(docs_profile, tmp_path)
    sensor = defs.resolve_sensor_def("document_folders_sensor")
    cleaning_job = defs.resolve_job_def(sensor.job_name)
    selected = {key.to_user_string() for key in cleaning_job.asset_layer.selected_asset_keys}
    assert "cleaned_corpus" in selected and "qlora_adapter" not in selected

    with dg.instance_for_test() as instance:
        first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert not first.run_requests and first.cursor
        unchanged = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=first.cursor)
        )
        assert not unchanged.run_requests
        (tmp_path / "docs" / "b.md").write_text("# B\n\nA new page.\n")
        changed = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=first.cursor)
        )

    assert len(changed.run_requests) == 1
    assert changed.cursor != first.cursor


def test_fingerprint_changes_when_a_file_is_rewritten(tmp_path: Path) -> None:
    page = tmp_path / "a.md"
    page.write_text("one")
    before = folders_fingerprint([str(tmp_path / "*.md")])
    page.write_text("one, and two")

    assert folders_fingerprint([str(tmp_path / "*.md")]) != before


def test_run_plan_reads_each_feedback_quarter_before_the_rest(
    docs_profile: Path, tmp_path: Path
) -> None:
    defs = _defs(docs_profile, tmp_path)
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())

    with dg.instance_for_test() as instance:
        plan = run_plan(defs, instance, keys)

    partitions = [partition for _, partition in plan if partition]
    assert partitions[:3] == ["2026-01-01", "2026-04-01", "2026-07-01"]
    quarterly = {dg.AssetKey(name) for name in ("feedback_records", "preference_dataset")}
    quarterly.add(dg.AssetKey("preference_ledger"))
    assert all(assets == quarterly for assets, p in plan if p)
    assert plan[-1][1] is None and dg.AssetKey("feedback_records") not in plan[-1][0]
