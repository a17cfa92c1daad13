"""Training inside the materialized graph: a process of its own (`accelerate launch` through
Dagster Pipes) that streams its steps to Dagster and tracks everything in MLflow."""

from __future__ import annotations

import pytest

from llm_assets.allocator import allocator_library

from .conftest import MaterializedGraph

pytestmark = pytest.mark.slow


def test_training_runs_in_an_accelerate_process_that_streams_steps_to_dagster(
    graph: MaterializedGraph,
) -> None:
    metadata = graph.metadata("qlora_adapter")
    assert str(metadata["accelerate_config"]).endswith("conf/accelerate/cpu.yaml")
    assert metadata["steps"] == graph.profile.training.max_steps
    assert float(metadata["tokens_per_second"]) > 0  # type: ignore[arg-type]
    assert float(metadata["peak_memory_mib"]) > 0  # type: ignore[arg-type]
    # The process restarted itself on the allocator the setting resolves to on this machine.
    assert metadata["allocator"] == allocator_library(graph.profile.training.allocator)[0]
    assert str(metadata["training_history"]).startswith("| step | loss | lr | grad norm |")
    step_lines = [
        entry.user_message
        for entry in graph.instance.all_logs(graph.result.run_id)
        if entry.step_key == "qlora_adapter" and entry.user_message.startswith("step ")
    ]
    max_steps = graph.profile.training.max_steps
    assert f"step 2/{max_steps} · loss " in step_lines[0]
    assert len(step_lines) >= max_steps // graph.profile.training.logging_steps


def test_mlflow_run_has_metric_history_system_metrics_and_the_model(
    graph: MaterializedGraph,
) -> None:
    import mlflow

    adapter = graph.value("qlora_adapter")
    mlflow.set_tracking_uri(graph.defs.resources["mlflow"].resolved_tracking_uri())
    client = mlflow.MlflowClient()
    run_id = adapter["mlflow_run_id"]
    for name in ("loss", "learning_rate", "grad_norm", "tokens_per_second", "peak_memory_mib"):
        history = client.get_metric_history(run_id, name)
        assert len(history) >= 3, name
    assert client.get_metric_history(run_id, "system/cpu_utilization_percentage")
    assert client.get_metric_history(run_id, "system/system_memory_usage_megabytes")

    uri = adapter["mlflow_model_uri"]
    assert uri.startswith("models:/m-")
    logged = mlflow.get_logged_model(uri.removeprefix("models:/"))
    assert logged.source_run_id == run_id
    version = mlflow.register_model(uri, "test-training-qlora-adapter")
    pipeline = mlflow.transformers.load_model(
        f"models:/test-training-qlora-adapter/{version.version}"
    )
    [answer] = pipeline("My sync fails", max_new_tokens=4, do_sample=False)
    assert answer["generated_text"].startswith("My sync fails")
