"""The eval report's answers as an MLflow table, linked to the registered version they judge, on
a real local MLflow store (SQLite in a temporary folder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llm_assets.evaluation.mlflow_evaluation import (
    TABLE_ARTIFACT,
    log_evaluation_table,
    logged_model_id,
)

MODEL = "support-assistant"
METRICS = {"rouge_l": 0.41, "groundedness": 0.8}


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """mlflow on a fresh SQLite store, and an experiment whose artifacts stay in tmp_path."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # set_tracking_uri sets it
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = mlflow.create_experiment("evaluation", (tmp_path / "artifacts").as_uri())
    try:
        yield mlflow, experiment_id
    finally:
        mlflow.set_tracking_uri(previous)


def _answers() -> pd.DataFrame:
    """Two golden prompts answered by the tuned model and its base, as the report scores them."""
    return pd.DataFrame(
        {
            "pair_id": [1, 1, 2, 2],
            "model": ["tuned", "base", "tuned", "base"],
            "prompt": ["Restore a file?", "Restore a file?", "Sync a folder?", "Sync a folder?"],
            "reference": ["Open the trash.", "Open the trash.", "Use selective sync."] + ["-"],
            "answer": ["Open the trash.", "No idea.", "Selective sync.", "Ask support."],
            "rouge_l": [1.0, 0.0, 0.5, 0.0],
            "groundedness": [1.0, 0.2, None, None],
            "latency_ms": [12.0, 10.0, 11.0, 9.0],  # not part of the table
        }
    )


def test_a_version_from_a_logged_model_gets_the_evaluation(tracking: tuple[Any, str]) -> None:
    mlflow, experiment_id = tracking
    client = mlflow.MlflowClient()
    model = mlflow.create_external_model(name="qlora-adapter", experiment_id=experiment_id)
    version = mlflow.register_model(f"models:/{model.model_id}", MODEL)
    run_id = client.create_run(experiment_id).info.run_id

    linked = log_evaluation_table(
        mlflow,
        _answers(),
        model_name=MODEL,
        model_version=str(version.version),
        run_id=run_id,
        metrics=METRICS,
    )

    assert linked == {
        "run_id": run_id,
        "table_artifact": TABLE_ARTIFACT,
        "model_name": MODEL,
        "model_version": "1",
        "model_id": model.model_id,
        "linked": "logged_model",
    }
    table = client.load_table(experiment_id, TABLE_ARTIFACT, run_ids=[run_id])
    assert list(table.columns) == [
        "pair_id",
        "model",
        "prompt",
        "reference",
        "answer",
        "rouge_l",
        "groundedness",
    ]
    assert list(table["model"]) == ["tuned", "base", "tuned", "base"]
    assert list(table["pair_id"].astype(str)) == ["1", "1", "2", "2"]
    # The model's page lists the metrics with the run and the dataset they came from.
    on_model = {m.key: m for m in client.get_logged_model(model.model_id).metrics}
    assert on_model["rouge_l"].value == pytest.approx(0.41)
    assert on_model["rouge_l"].run_id == run_id
    assert on_model["groundedness"].dataset_name == "golden_set"
    run = client.get_run(run_id)
    assert [i.model_id for i in run.inputs.model_inputs] == [model.model_id]
    assert [i.dataset.name for i in run.inputs.dataset_inputs] == ["golden_set"]
    assert run.data.tags["evaluated_model_version"] == f"{MODEL}/1"


def test_a_version_without_a_logged_model_gets_the_run_table_only(
    tracking: tuple[Any, str],
) -> None:
    mlflow, experiment_id = tracking
    client = mlflow.MlflowClient()
    training = client.create_run(experiment_id).info.run_id
    client.create_registered_model(MODEL)
    # How registry.py registers an adapter that is plain run artifacts.
    client.create_model_version(MODEL, source=f"runs:/{training}/adapter", run_id=training)
    evaluated = client.create_run(experiment_id).info.run_id
    unregistered = client.create_run(experiment_id).info.run_id

    plain = log_evaluation_table(
        mlflow, _answers(), model_name=MODEL, model_version="1", run_id=evaluated, metrics=METRICS
    )
    none = log_evaluation_table(
        mlflow, _answers(), model_name=MODEL, model_version=None, run_id=unregistered, metrics={}
    )

    assert plain["linked"] == none["linked"] == "run_only"
    assert plain["model_id"] == "" and "not registered from a logged model" in plain["reason"]
    assert none["model_version"] == "" and "no logged model or registered" in none["reason"]
    assert len(client.load_table(experiment_id, TABLE_ARTIFACT, run_ids=[evaluated])) == 4
    assert client.get_run(evaluated).inputs.model_inputs in (None, [])


def test_an_adapters_logged_model_gets_the_evaluation_before_it_is_registered(
    tracking: tuple[Any, str],
) -> None:
    """eval_report runs before registration: it links the adapter's logged model, which every
    version later registered from it shows."""
    mlflow, experiment_id = tracking
    client = mlflow.MlflowClient()
    model = mlflow.create_external_model(name="qlora-adapter", experiment_id=experiment_id)
    run_id = client.create_run(experiment_id).info.run_id

    linked = log_evaluation_table(
        mlflow,
        _answers(),
        run_id=run_id,
        metrics=METRICS,
        model_uri=f"models:/{model.model_id}",
        artifact_file="eval/golden_answers-run1.json",
    )

    assert linked["linked"] == "logged_model" and linked["model_id"] == model.model_id
    table = client.load_table(experiment_id, "eval/golden_answers-run1.json", run_ids=[run_id])
    assert len(table) == 4
    on_model = {m.key: m.value for m in client.get_logged_model(model.model_id).metrics}
    assert on_model == pytest.approx(METRICS)
    version = mlflow.register_model(f"models:/{model.model_id}", MODEL)
    assert logged_model_id(client.get_model_version(MODEL, version.version)) == model.model_id


def test_rows_without_the_answer_columns_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match=r"lack column\(s\) \['reference', 'answer'\]"):
        log_evaluation_table(
            None,
            _answers().drop(columns=["reference", "answer"]),
            model_name=MODEL,
            model_version="1",
            run_id="run",
            metrics={},
        )


def test_logged_model_id_reads_the_version_field_or_its_models_uri() -> None:
    class Version:
        def __init__(self, source: str, model_id: str | None = None) -> None:
            self.source = source
            self.model_id = model_id

    assert logged_model_id(Version("s3://bucket/x", "m-1")) == "m-1"
    assert logged_model_id(Version("models:/m-abc123")) == "m-abc123"
    assert logged_model_id(Version("models:/support-assistant/3")) is None
    assert logged_model_id(Version("runs:/abc/adapter")) is None
