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

    monkeypatch.setenv("LLM_ASSETS_PROFILE", str(TINY_PROFILE))
    module = importlib.import_module("llm_assets.definitions")
    module = importlib.reload(module)
    assert isinstance(module.defs, dg.Definitions)


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
        "golden_predictions",
        "human_review_scores",
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
