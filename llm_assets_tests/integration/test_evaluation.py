"""Evaluation on the tiny profile: predictions, blinded review files, the report (see conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from llm_assets.contracts import Adapter, RagIndex
from llm_assets.evaluation.review import REVIEW_CRITERIA, SCORE_COLUMNS

from .conftest import MaterializedGraph

pytestmark = pytest.mark.slow

METRIC_KEYS = {
    *(
        f"golden_{m}_{label}"
        for m in ("rougeL", "bleu", "chrf", "exact_match")
        for label in ("tuned", "base")
    ),
    "golden_perplexity_tuned",
    "golden_perplexity_base",
    "validation_perplexity_tuned",
    "validation_perplexity_base",
    "baseline_label",
    "golden_rougeL_baseline",
    "deltas",
    "redteam_pass_rate",
    "redteam_categories",
    "human_scores",
    "human_reviews",
    "latency_ms_p50_tuned",
    "latency_ms_p50_base",
    "tokens_per_second_tuned",
    "tokens_per_second_base",
    "mlflow_run_id",
    "report_path",
    "report_html_path",
}


def test_golden_predictions_hold_every_model_and_prompt(graph: MaterializedGraph) -> None:
    predictions = graph.value("golden_predictions")
    golden = graph.value("golden_set").head(graph.profile.evaluation.max_eval_rows)
    assert isinstance(predictions, pd.DataFrame)
    # The tiny profile trains with retrieval: tuned and base answer as served (with context) and
    # closed-book; no champion before the first gate.
    assert set(predictions["model"]) == {"tuned", "base", "tuned/closed-book", "base/closed-book"}
    for _, rows in predictions.groupby("model"):
        assert sorted(rows["pair_id"]) == sorted(golden["pair_id"].astype(str))
    assert (predictions["new_tokens"] <= graph.profile.evaluation.generation.max_new_tokens).all()
    assert (predictions["batch_latency_ms"] > 0).all()


def test_answers_are_judged_as_served_after_the_guardrails(graph: MaterializedGraph) -> None:
    """The adapter carries its scope calibration; red-team prompts whose closest chunk is under
    its threshold, and only those, get the reply; both the served and the model's own answers
    are scored."""
    from llm_assets.evaluation.redteam import load_suite
    from llm_assets.rag.retrieval import open_retriever
    from llm_assets.serving.guardrails import guardrails_for, read_scope_calibration

    profile = graph.profile
    adapter = graph.value("qlora_adapter")
    guard = guardrails_for(adapter["path"], profile.guardrails, profile.cleaning.pii_allow_list)
    report = graph.value("redteam_report")
    predictions = graph.value("golden_predictions")
    cases = load_suite(profile.redteam, profile.base_dir)
    retriever = open_retriever(graph.value("rag_index", RagIndex))
    scores = [hits[0].score for hits in retriever.retrieve_many([c.prompt for c in cases], 1)]

    assert read_scope_calibration(adapter["path"]) and guard.min_relevance is not None
    assert report["declined_out_of_scope"] == sum(s < guard.min_relevance for s in scores)
    assert 0 <= report["model_alone_pass_rate"] <= 1
    declined = predictions[predictions["guard"] == "declined"]
    assert (declined["answer"] == profile.guardrails.scope.reply).all()
    assert set(declined["model"]) <= {"tuned", "base"}  # closed-book has no score to judge
    kept = predictions[predictions["guard"] == ""]
    assert (kept["answer"] == kept["model_answer"]).all()


def test_review_files_are_blinded_and_their_key_stays_out(graph: MaterializedGraph) -> None:
    predictions = graph.value("golden_predictions")
    export_id = predictions["export_id"].iloc[0]
    review_dir = graph.state / "review"
    csv_path = review_dir / f"golden-review-{export_id}.csv"
    jsonl_path = review_dir / f"golden-review-{export_id}.jsonl"
    assert csv_path.is_file() and jsonl_path.is_file()
    sheet = pd.read_csv(csv_path, keep_default_na=False)
    assert len(sheet) == predictions["pair_id"].nunique()
    assert {"item_id", "answer_a", "answer_b", *SCORE_COLUMNS, "comment"} <= set(sheet.columns)
    assert not {"model", "pair_id", "a", "b"} & set(sheet.columns)
    lines = [json.loads(line) for line in jsonl_path.read_text().splitlines()]
    assert [row["item_id"] for row in lines] == sheet["item_id"].to_list()
    keys = list(review_dir.rglob("*key*"))
    assert keys == []
    stored_keys = list((graph.state / "artifacts" / "golden_predictions").rglob("review_key.json"))
    assert len(stored_keys) == 1
    key = json.loads(stored_keys[0].read_text())
    assert key["export_id"] == export_id
    sides = [item["a"] for item in key["items"].values()]
    assert set(sides) == {"tuned", "base"}  # the tuned answer is on both sides across rows
    scores = graph.value("human_review_scores")
    assert scores["reviews"] == 0 and scores["export_id"] == export_id


def test_eval_report_has_every_key_and_both_reports(graph: MaterializedGraph) -> None:
    report = graph.value("eval_report")
    assert METRIC_KEYS <= set(report), METRIC_KEYS - set(report)
    assert report["baseline_label"] == "base"
    assert "golden_rougeL_champion" not in report
    for name in ("rougeL_vs_base", "bleu_vs_base", "chrf_vs_base", "perplexity_vs_base"):
        delta = report["deltas"][name]
        assert delta["low"] <= delta["high"]
    assert report["redteam_categories"] == graph.value("redteam_report")["categories"]
    markdown = Path(report["report_path"]).read_text()
    page = Path(report["report_html_path"]).read_text()
    assert "## Promotion gate" in markdown and "| ROUGE-L |" in markdown
    assert "<img" in page and "data:image/png;base64," in page
    assert "Training loss" in page and "No `loss` history" not in markdown
    # No judge in the tiny profile: the report says so, and the gate lists it as not counted.
    assert report["judge"]["enabled"] is False and "No LLM judge was asked" in markdown
    gate = {row["criterion"]: row for row in report["promotion"]["criteria"]}
    assert gate["judge_score"]["actual"] == "not counted"
    assert all(c in markdown for c in REVIEW_CRITERIA)


def test_eval_report_is_logged_to_the_adapters_mlflow_run(graph: MaterializedGraph) -> None:
    import mlflow

    report = graph.value("eval_report")
    client = mlflow.MlflowClient(
        tracking_uri=graph.defs.resources["mlflow"].resolved_tracking_uri()
    )
    run = client.get_run(report["mlflow_run_id"])
    assert run.data.metrics["eval.golden_rougeL_tuned"] == pytest.approx(
        report["golden_rougeL_tuned"]
    )
    assert "eval.deltas.rougeL_vs_base.low" in run.data.metrics
    logged = {item.path for item in client.list_artifacts(run.info.run_id, "eval")}
    assert {"eval/report.md", "eval/report.html"} <= logged
    event = graph.instance.get_latest_materialization_event(dg.AssetKey("eval_report"))
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert "Evaluation report" in metadata["report"].value
    # Every model's answers as an MLflow table, and the tuned figures on the adapter's logged
    # model, so its page in the MLflow UI shows the evaluation.
    tables = [path for path in logged if path.startswith("eval/golden_answers-")]
    assert len(tables) == 1 and "logged_model" in metadata["answers_table"].value
    table = client.load_table(run.info.experiment_id, tables[0], run_ids=[run.info.run_id])
    answers = graph.value("golden_predictions")
    assert len(table) == len(answers) and set(table["model"]) == set(answers["model"])
    assert table["rouge_l"].between(0, 1).all()
    model_id = report_adapter_model_id(graph)
    on_model = {m.key: m.value for m in client.get_logged_model(model_id).metrics}
    assert on_model["eval.golden_rougeL"] == pytest.approx(report["golden_rougeL_tuned"])
    # The training run made the model (an output) and evaluated it; its metrics name the run.
    run = client.get_run(run.info.run_id)
    linked = [
        m.model_id for m in (run.inputs.model_inputs or []) + (run.outputs.model_outputs or [])
    ]
    assert model_id in linked
    assert run.info.run_id in {m.run_id for m in client.get_logged_model(model_id).metrics}


def report_adapter_model_id(graph: MaterializedGraph) -> str:
    uri = graph.value("preference_adapter")["mlflow_model_uri"]
    assert uri.startswith("models:/m-"), uri
    return str(uri.removeprefix("models:/"))


def test_the_promoted_champion_answers_and_becomes_the_baseline(graph: MaterializedGraph) -> None:
    """After the gate promoted the tuned adapter (the tiny profile's criteria always pass), the
    next evaluation finds it as `champion`, loads it and compares against it."""
    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.comparison import compare_models
    from llm_assets.evaluation.grounding import ground_prompts
    from llm_assets.evaluation.predictions import (
        CLOSED_BOOK,
        RETRIEVAL,
        answer_golden_set,
        contenders,
        golden_prompts,
        stored_perplexities,
        vocabulary_mismatch,
    )
    from llm_assets.evaluation.registry import find_champion
    from llm_assets.rag.context import read_context_format
    from llm_assets.rag.retrieval import open_retriever
    from llm_assets.settings import EvaluationConfig, GenerationConfig

    adapter = graph.value("qlora_adapter")
    tracking = graph.defs.resources["mlflow"].tracking()
    champion = find_champion(tracking, graph.profile.use_case.registered_model_name)
    assert champion is not None and champion["version"]
    tokenizer = load_chat_tokenizer(adapter["path"])
    assert vocabulary_mismatch(tokenizer, champion) is None
    golden = graph.value("golden_set").head(4)
    context_format = read_context_format(adapter["path"])
    assert context_format is not None  # trained with retrieval, so served and judged with it
    prompts = golden_prompts(golden)
    system_prompt = graph.profile.datasets.system_prompt
    search_many = open_retriever(graph.value("rag_index", RagIndex)).retrieve_many
    prompts_by_mode = {
        CLOSED_BOOK: ground_prompts(prompts, None, context_format, system_prompt),
        RETRIEVAL: ground_prompts(prompts, search_many, context_format, system_prompt),
    }
    models = contenders(graph.value("qlora_adapter", Adapter), champion, RETRIEVAL, RETRIEVAL)
    conversations = [[dict(m) for m in messages] for messages in golden["messages"]]
    table = answer_golden_set(
        models,
        tokenizer,
        golden,
        GenerationConfig(max_new_tokens=4),
        prompts_by_mode,
        validation=conversations,
        max_length=graph.profile.datasets.max_length,
    )
    assert table.groupby("model").size().to_dict() == {
        "tuned": 4,
        "base": 4,
        "tuned/closed-book": 4,
        "base/closed-book": 4,
        "champion": 4,
    }
    assert set(table.loc[table["model"] == "champion", "model_version"]) == {champion["version"]}
    served = table[~table["model"].str.contains("/")]
    perplexities = stored_perplexities(served, golden["pair_id"].astype(str).to_list())
    # Stored per row on the same load that answered: validation here is the golden set again.
    assert perplexities["tuned"]["validation"] == perplexities["tuned"]["golden"]
    metrics = compare_models(
        served, perplexities, EvaluationConfig(bootstrap_samples=100), graph.state / "cache"
    )
    assert metrics["baseline_label"] == "champion"
    assert metrics["golden_rougeL_baseline"] == metrics["golden_rougeL_champion"]
    assert {"rougeL_vs_champion", "perplexity_vs_champion"} <= set(metrics["deltas"])
    # The champion is the tuned adapter itself here: the same answers, no difference.
    assert metrics["golden_perplexity_champion"] == pytest.approx(
        metrics["golden_perplexity_tuned"], rel=1e-4
    )


def test_a_malformed_review_file_fails_with_file_row_and_column(graph: MaterializedGraph) -> None:
    from .conftest import materialize_all

    export_id = graph.value("golden_predictions")["export_id"].iloc[0]
    review_dir = graph.state / "review"
    sheet = pd.read_csv(review_dir / f"golden-review-{export_id}.csv", keep_default_na=False)
    sheet.loc[1, "accuracy_a"] = "excellent"
    filled = review_dir / f"golden-review-{export_id}.alex.csv"
    sheet.to_csv(filled, index=False)
    try:
        result = materialize_all(
            graph.defs, graph.instance, selection=["human_review_scores"], raise_on_error=False
        )
    finally:
        filled.unlink()
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error.message)
    assert filled.name in message and "row 2" in message and "column 'accuracy_a'" in message
