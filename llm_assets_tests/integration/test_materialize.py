"""The whole graph on the tiny test profile, materialized once per session (see conftest)."""

from __future__ import annotations

import math
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from llm_assets.defs import build_assets_and_checks, build_definitions
from llm_assets.defs.resources import default_resources
from llm_assets.defs.selection import only_stale_or_missing, staleness
from llm_assets.settings import load_profile

from .conftest import MaterializedGraph, materialize_all

pytestmark = pytest.mark.slow


def test_every_asset_and_check_succeeds_offline(graph: MaterializedGraph) -> None:
    runs = [*graph.partition_results, graph.result]
    assert graph.partition_results, "the tiny profile has a quarter of feedback to read"
    assert all(run.success for run in runs)
    materialized = {
        event.asset_key.to_user_string()
        for run in runs
        for event in run.get_asset_materialization_events()
    }
    expected = {
        key.to_user_string() for key in graph.defs.resolve_asset_graph().get_all_asset_keys()
    }
    assert materialized == expected
    evaluations = [
        event.event_specific_data
        for run in runs
        for event in run.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert len(evaluations) == len(graph.defs.resolve_asset_graph().asset_check_keys)
    assert all(evaluation.passed for evaluation in evaluations), [
        (e.check_name, e.description) for e in evaluations if not e.passed
    ]
    assert graph.network_attempts == []


def test_table_assets_load_as_dataframes_and_datasets(graph: MaterializedGraph) -> None:
    from datasets import DatasetDict

    corpus = graph.value("cleaned_corpus")
    assert isinstance(corpus, pd.DataFrame)
    assert {"record_id", "source", "text"} <= set(corpus.columns)
    splits = graph.value("sft_dataset")
    assert isinstance(splits, DatasetDict) and set(splits) == {"train", "validation"}
    assert splits["train"][0]["messages"][-1]["role"] == "assistant"
    golden = graph.value("golden_set")
    assert 20 <= len(golden) <= 40
    assert not set(golden["pair_id"]) & set(splits["train"]["pair_id"])


def test_sft_dataset_drops_long_rows_and_golden_lookalikes_into_its_ledger(
    graph: MaterializedGraph,
) -> None:
    ledger = graph.value("dataset_ledger")
    splits = graph.value("sft_dataset")
    golden = graph.value("golden_set")
    max_length = graph.profile.datasets.max_length
    too_long = ledger[ledger["reason"] == "dataset.too_long"]
    assert len(too_long) > 0 and (too_long["token_count"] > max_length).all()
    assert too_long["detail"].str.contains(f"tokens > max_length={max_length}").all()
    for name in splits:
        assert 0 < max(splits[name]["token_count"]) <= max_length
    # The hand-written golden file extends the sampled hold-out; the ticket answers its second
    # row nearly repeats are out of training, each naming that golden row.
    from_file = golden[golden["source"] == "golden_file"]
    assert len(from_file) == 3 and len(golden) > 3
    leaks = ledger[ledger["reason"] == "dataset.golden_leak"]
    assert len(leaks) > 0
    assert set(leaks["duplicate_of"]) == {from_file.iloc[1]["pair_id"]}
    kept = ledger[ledger["action"] == "kept"]
    assert len(kept) == len(splits["train"]) + len(splits["validation"])
    assert {"doc_section", "doc_summary", "doc_continuation", "support_answer"} <= set(
        graph.value("sft_pairs")["task"]
    )
    adapter_event = graph.instance.get_latest_materialization_event(dg.AssetKey("qlora_adapter"))
    assert adapter_event is not None and adapter_event.asset_materialization is not None
    # Nothing was left for training to drop: the dataset already did, in the open.
    assert adapter_event.asset_materialization.metadata["rows_dropped_too_long"].value == 0


def test_sft_dataset_export_has_jsonl_card_and_the_training_template(
    graph: MaterializedGraph,
) -> None:
    import json

    import yaml
    from transformers import AutoTokenizer

    splits = graph.value("sft_dataset")
    golden = graph.value("golden_set")
    template = graph.value("chat_template")
    export = Path(template["path"]).parent
    card = (export / "README.md").read_text()
    metadata = yaml.safe_load(card.split("---\n")[1])
    assert {s["name"]: s["num_examples"] for s in metadata["dataset_info"]["splits"]} == {
        "train": len(splits["train"]),
        "validation": len(splits["validation"]),
        "golden": len(golden),
    }
    lines = (export / "train.jsonl").read_text().splitlines()
    assert [json.loads(line)["pair_id"] for line in lines] == splits["train"]["pair_id"]
    assert (export / "chat_template.jinja").read_text() == template["template"]
    adapter = graph.value("qlora_adapter")
    assert AutoTokenizer.from_pretrained(adapter["path"]).chat_template == template["template"]


def test_ledger_accounts_for_the_sample_defects(graph: MaterializedGraph) -> None:
    ledger = graph.value("cleaning_ledger")
    raw_total = sum(len(graph.value(f"raw_{s.name}")) for s in graph.profile.sources)
    assert len(ledger) == raw_total
    reasons = set(ledger["reason"].dropna())
    assert {
        "source.malformed_json",
        "source.empty_text",
        "source.missing_field",
        "dedup.exact",
    } <= reasons
    duplicates = ledger[ledger["reason"] == "dedup.exact"]
    assert duplicates["duplicate_of"].notna().all()
    corpus = graph.value("cleaned_corpus")
    assert not corpus["text"].str.contains(r"[\w.+-]+@[\w-]+\.[\w.]+", regex=True).any()


def test_mlflow_run_names_data_code_and_dagster_run(graph: MaterializedGraph) -> None:
    import mlflow

    adapter = graph.value("qlora_adapter")
    client = mlflow.MlflowClient(
        tracking_uri=graph.defs.resources["mlflow"].resolved_tracking_uri()
    )
    run = client.get_run(adapter["mlflow_run_id"])
    assert run.data.tags["dagster.run_id"] == graph.result.run_id
    assert run.data.tags["dagster.asset_key"] == "qlora_adapter"
    assert run.data.tags["git_commit"]
    splits = graph.value("sft_dataset")
    from llm_assets.storage import frame_digest

    assert run.data.params["data.train_digest"] == frame_digest(splits["train"].to_pandas())
    assert run.data.params["training.method"] == "qlora"
    inputs = {d.dataset.name: d.dataset.digest for d in run.inputs.dataset_inputs}
    assert inputs["sft_dataset.train"] == run.data.params["data.train_digest"]
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert len(losses) >= 3
    assert "eval.golden_perplexity_tuned" in run.data.metrics


def test_qlora_trains_on_a_4bit_base_and_beats_it(graph: MaterializedGraph) -> None:
    adapter = graph.value("qlora_adapter")
    assert adapter["method"] == "qlora"
    assert (Path(adapter["path"]) / "adapter_model.safetensors").is_file()
    assert (
        "chat_template" in (Path(adapter["path"]) / "tokenizer_config.json").read_text()
        or (Path(adapter["path"]) / "chat_template.jinja").is_file()
    )
    report = graph.value("eval_report")
    assert report["validation_perplexity_tuned"] < report["validation_perplexity_base"]
    assert Path(report["report_path"]).read_text().startswith("# Evaluation report")


def test_quantized_export_is_reloaded_and_measured(graph: MaterializedGraph) -> None:
    export = graph.value("quantized_export")
    rows = {row["format"]: row for row in export["exports"]}
    assert set(rows) == {"merged-fp32", "bnb-nf4", "torchao-int8", "quanto-int4"}
    merged = rows["merged-fp32"]
    for name in ("bnb-nf4", "torchao-int8", "quanto-int4"):
        row = rows[name]
        assert row["size_mb"] < merged["size_mb"], name
        assert math.isfinite(row["perplexity"]) and row["load_seconds"] > 0
        assert row["perplexity_delta"] == pytest.approx(row["perplexity"] - merged["perplexity"])
        assert 0 <= row["golden_rouge_l"] <= 1 and row["tokens_per_second"] >= 0
        assert (Path(row["path"]) / "tokenizer_config.json").is_file()
    card = (Path(merged["path"]) / "README.md").read_text()
    assert card.startswith("---\nbase_model: ") and "safetensors" in card


def test_unchanged_work_is_not_redone(graph: MaterializedGraph) -> None:
    everything = set(graph.defs.resolve_asset_graph().get_all_asset_keys())
    assert only_stale_or_missing(graph.defs, graph.instance, everything) == set()

    # Re-reading unchanged sources yields the same data versions: nothing downstream is stale.
    sources = {key for key in everything if key.to_user_string().startswith("raw_")}
    rerun = materialize_all(graph.defs, graph.instance, selection=list(sources))
    assert rerun.success
    assert only_stale_or_missing(graph.defs, graph.instance, everything) == set()

    # A training setting changed in conf makes training out of date, and what follows with it;
    # nothing before. Both tuning steps read training settings (the preference adapter is trained
    # with the same LoRA and precision settings), so both are re-made first: what follows re-runs
    # if its data changed.
    changed = graph.profile.model_copy(
        update={"training": graph.profile.training.model_copy(update={"lora_r": 4})}
    )
    changed_defs = build_definitions(changed, resources=graph.defs.resources)
    assert only_stale_or_missing(changed_defs, graph.instance, everything) == {
        dg.AssetKey("qlora_adapter"),
        dg.AssetKey("preference_adapter"),
    }
    states = staleness(changed_defs, graph.instance, everything)
    assert {key.to_user_string() for key, state in states.items() if not state.fresh} == {
        "qlora_adapter",
        "preference_adapter",
        "registered_challenger",
        "golden_predictions",
        "fact_answers",
        "human_review_scores",
        "judge_scores",
        "redteam_report",
        "eval_report",
        "champion_model",
        "merged_model",
        "quantized_export",
    }
    assert states[dg.AssetKey("qlora_adapter")].own[0].startswith("code version changed")
    assert states[dg.AssetKey("preference_adapter")].own[0].startswith("code version changed")
    assert states[dg.AssetKey("eval_report")].upstream
    assert states[dg.AssetKey("base_model")].fresh


def test_failing_blocking_check_stops_training(tmp_path: Path) -> None:
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text(
        "\n".join(
            f'{{"id": "T{i}", "body": "Please email me at user{i}@example.com about sync {i}",'
            f' "answer": "We replied to your request number {i}."}}'
            for i in range(10)
        )
    )
    profile_path = tmp_path / "leaky.yaml"
    profile_path.write_text(
        "sources:\n  - {name: tickets, kind: jsonl, path: tickets.jsonl, text_field: body,"
        " id_field: id, response_field: answer}\ncleaning: {redact_pii: false}\n"
    )
    profile = load_profile(profile_path)
    assets, checks = build_assets_and_checks(profile)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*assets, *checks],
            instance=instance,
            resources=default_resources(tmp_path / "state"),
            selection=dg.AssetSelection.all() - dg.AssetSelection.groups("feedback"),
            raise_on_error=False,
        )
        failed = {
            e.event_specific_data.check_name  # type: ignore[union-attr]
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed  # type: ignore[union-attr]
        }
        assert "cleaned_corpus_has_no_pii" in failed
        assert instance.get_latest_materialization_event(dg.AssetKey("cleaned_corpus")) is not None
        for downstream in ("sft_pairs", "base_model", "qlora_adapter"):
            assert instance.get_latest_materialization_event(dg.AssetKey(downstream)) is None


def test_cleaning_again_starts_from_the_saved_near_duplicate_index(
    graph: MaterializedGraph,
) -> None:
    corpus_key = dg.AssetKey("cleaned_corpus")
    selection = dg.AssetSelection.assets(corpus_key).required_multi_asset_neighbors()
    rerun = materialize_all(graph.defs, graph.instance, selection=selection)
    assert rerun.success
    index_event = graph.instance.get_latest_materialization_event(
        dg.AssetKey("near_duplicate_index")
    )
    assert index_event is not None and index_event.asset_materialization is not None
    assert index_event.asset_materialization.metadata["started_from_previous"].value is True
    # Same corpus as before, so nothing downstream (training included) went stale.
    downstream = {dg.AssetKey(name) for name in ("sft_pairs", "base_model", "eval_report")}
    assert only_stale_or_missing(graph.defs, graph.instance, downstream) == set()
