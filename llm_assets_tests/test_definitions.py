import os
from pathlib import Path

import dagster as dg

from llm_assets.defs import build_definitions
from llm_assets.settings import DEFAULT_PROFILE_PATH, load_profile

from .conftest import TINY_PROFILE

STABLE_KEYS = {
    "cleaned_corpus",
    "cleaning_ledger",
    "sft_dataset",
    "golden_set",
    "base_model",
    "qlora_adapter",
    "eval_report",
    "quantized_export",
}


def test_definitions_load_with_stable_keys_groups_and_checks() -> None:
    defs = build_definitions(load_profile(DEFAULT_PROFILE_PATH))
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert STABLE_KEYS <= keys
    assert {"raw_docs", "raw_tickets", "raw_faq"} <= keys
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups["raw_tickets"] == "sources"
    assert groups["cleaned_corpus"] == groups["cleaning_ledger"] == "cleaning"
    assert groups["qlora_adapter"] == "training"
    assert groups["quantized_export"] == "export"
    checks = {check.name for check in graph.asset_check_keys}
    assert "cleaning_ledger_accounts_for_every_record" in checks
    assert "cleaned_corpus_has_no_pii" in checks
    assert {
        "sft_dataset_excludes_golden_set",
        "sft_dataset_renders_like_serving",
        "dataset_ledger_accounts_for_every_pair",
    } <= checks
    assert groups["dataset_ledger"] == groups["chat_template"] == "datasets"


def test_code_location_module_loads(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import importlib

    from llm_assets.defs.location import active_profile

    monkeypatch.setenv("LLM_ASSETS_PROFILE", str(TINY_PROFILE))
    active_profile.cache_clear()
    module = importlib.reload(importlib.import_module("llm_assets.definitions"))
    try:
        assert isinstance(module.defs, dg.Definitions)
    finally:
        active_profile.cache_clear()


def test_loading_the_code_location_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, llm_assets.definitions; "
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft', 'mlflow') "
        "if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "LLM_ASSETS_PROFILE": str(TINY_PROFILE)},
    )
    assert out.stdout.strip() == ""


def test_selection_adds_upstream_that_was_never_materialized() -> None:
    from llm_assets.defs.selection import resolve_selection, with_missing_upstream

    defs = build_definitions(load_profile(TINY_PROFILE))
    with dg.instance_for_test() as instance:
        wanted = with_missing_upstream(defs, instance, resolve_selection(defs, "eval_report"))
    names = {key.to_user_string() for key in wanted}
    assert names == {
        "raw_docs",
        "raw_tickets",
        "feedback_records",
        "cleaned_corpus",
        "cleaning_ledger",
        "near_duplicate_index",
        "sft_pairs",
        "golden_set",
        "rag_chunks",
        "rag_embeddings",
        "rag_index",
        "sft_dataset",
        "dataset_ledger",
        "chat_template",
        "base_model",
        "qlora_adapter",
        "preference_dataset",
        "preference_ledger",
        "preference_adapter",
        "golden_predictions",
        "human_review_scores",
        "judge_scores",
        "redteam_report",
        "fact_answers",
        "eval_report",
    }


def test_check_profile_command_reports_bad_profiles(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from llm_assets.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - {name: t, kind: jsonl, path: t.jsonl, text_feild: body}\n")
    assert main(["check-profile", str(TINY_PROFILE), str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"ok: {TINY_PROFILE}" in captured.out
    assert "sources.0(t).text_feild: unknown key" in captured.err


def test_the_pipeline_reads_feedback_from_the_database_the_server_writes(
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    from llm_assets.serving.store import database_url

    profile = load_profile(TINY_PROFILE)
    serving = profile.serving.model_copy(update={"database_url_env": "ACME_FEEDBACK_DB"})
    profile = profile.model_copy(update={"serving": serving})
    monkeypatch.setenv("ACME_FEEDBACK_DB", "postgresql+psycopg://app:pw@db:5432/feedback")

    store = build_definitions(profile).resources["feedback_store"]

    assert store.url() == database_url(serving.database_url_env)
    assert store.url() == "postgresql+psycopg://app:pw@db:5432/feedback"


def test_new_promotion_criteria_re_run_the_report_not_the_answers() -> None:
    profile = load_profile(TINY_PROFILE)
    criteria = profile.use_case.criteria.model_copy(update={"rouge_l_margin": 0.5})
    changed = profile.model_copy(
        update={"use_case": profile.use_case.model_copy(update={"criteria": criteria})}
    )

    def code_versions(p):  # type: ignore[no-untyped-def]
        graph = build_definitions(p).resolve_asset_graph()
        return {
            name: graph.get(dg.AssetKey(name)).code_version
            for name in ("golden_predictions", "eval_report")
        }

    before, after = code_versions(profile), code_versions(changed)
    assert after["golden_predictions"] == before["golden_predictions"]
    assert after["eval_report"] != before["eval_report"]


def test_the_package_uses_no_private_dagster_api() -> None:
    """`dagster._…` moves between minor versions; the package reads Dagster's public API only
    (the test suite may compare against private parts, the product may not)."""
    package = Path(__file__).resolve().parents[1] / "llm_assets"
    private = [
        f"{path.relative_to(package.parent)}:{number}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "dagster._" in line
    ]
    assert private == []


def _inventory(defs: dg.Definitions) -> dict[str, list[str]]:
    graph = defs.resolve_asset_graph()
    return {
        "assets": sorted(key.to_user_string() for key in graph.get_all_asset_keys()),
        "checks": sorted(str(key) for key in graph.asset_check_keys),
        "code_versions": sorted(
            f"{spec.key.to_user_string()}={spec.code_version}"
            for spec in defs.resolve_all_asset_specs()
        ),
        "sensors": sorted(sensor.name for sensor in defs.sensors or []),
        "schedules": sorted(schedule.name for schedule in defs.schedules or []),  # type: ignore[union-attr]
        "jobs": sorted(job.name for job in defs.jobs or []),  # type: ignore[union-attr]
        "resources": sorted(defs.resources or {}),
    }


def test_the_defs_folder_dagster_loads_is_what_build_definitions_makes(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from llm_assets.defs.location import active_profile

    monkeypatch.setenv("LLM_ASSETS_PROFILE", str(TINY_PROFILE))
    active_profile.cache_clear()
    try:
        loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    finally:
        active_profile.cache_clear()
    built = build_definitions(load_profile(TINY_PROFILE))
    assert _inventory(loaded) == _inventory(built)
    # One copy of each: a definition left at a module's top level would be found twice.
    assert len(loaded.assets or []) == len(built.assets or [])  # type: ignore[arg-type]
    assert len(loaded.asset_checks or []) == len(built.asset_checks or [])  # type: ignore[arg-type]


def test_dg_checks_the_code_location() -> None:
    import shutil
    import subprocess
    import sys

    dg_cli = shutil.which("dg", path=str(Path(sys.executable).parent))
    assert dg_cli, "dagster-dg-cli is a dev dependency"
    done = subprocess.run(
        [dg_cli, "check", "defs"],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "LLM_ASSETS_PROFILE": str(TINY_PROFILE)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr
