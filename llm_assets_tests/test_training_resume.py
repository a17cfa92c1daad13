"""A training process killed mid-run: Dagster reports the failure with the process's stderr,
and the next materialization resumes from the last checkpoint instead of starting over.

`qlora_adapter` is materialized on its own, its inputs (a tiny base, a small dataset, the chat
template) stored beforehand where the asset store reads them. The training runs as it does in
production: `accelerate launch` through the Pipes launcher, then a SIGKILL to the training
process (not the launcher) as soon as a checkpoint exists, as a crash or a pre-empted machine
would.
"""

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from llm_assets.defs.resources import default_resources
from llm_assets.defs.training import build_training_defs
from llm_assets.settings import DatasetConfig, Profile, SourceConfig, TrainingConfig
from llm_assets.training.sft import latest_checkpoint

from .test_training_methods import build_tiny_training_inputs

pytestmark = pytest.mark.slow

TRAINING = TrainingConfig(
    max_steps=16,
    save_steps=2,
    logging_steps=1,
    per_device_train_batch_size=4,
    learning_rate=5e-3,
    system_metrics_interval_seconds=1,
)


def _store_inputs(state: Path, base: Path, data: Path) -> None:
    """The upstream assets as the asset store keeps them: manifests as JSON, datasets as Arrow."""
    from datasets import load_from_disk

    assets = state / "assets"
    assets.mkdir(parents=True)
    manifest = {
        "path": str(base),
        "model_id": "tiny",
        "revision": None,
        "license": "apache-2.0",
        "weights_digest": "w1",
    }
    (assets / "base_model.json").write_text(json.dumps(manifest))
    template = {"template": None, "digest": "t1", "origin": "base tokenizer"}
    (assets / "chat_template.json").write_text(json.dumps(template))
    load_from_disk(str(data)).save_to_disk(str(assets / "sft_dataset.hfds"))


def _kill_training_at_first_checkpoint(state: Path, killed: dict[str, Any]) -> None:
    import psutil

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for checkpoints in (state / "artifacts" / "work" / "qlora_adapter").glob("*/checkpoints"):
            if latest_checkpoint(checkpoints) is not None:
                for process in psutil.Process().children(recursive=True):
                    command = " ".join(process.cmdline())
                    if "llm_assets.training.fine_tune" in command and "accelerate" not in command:
                        process.send_signal(signal.SIGKILL)
                        process.wait(30)
                        killed["checkpoint"] = latest_checkpoint(checkpoints)
                        return
        time.sleep(0.05)


def test_killed_training_process_resumes_from_last_checkpoint(tmp_path: Path) -> None:
    import mlflow

    state = tmp_path / "state"
    _store_inputs(state, *build_tiny_training_inputs(tmp_path))
    profile = Profile(
        sources=[SourceConfig(name="tickets", kind="jsonl", path="tickets.jsonl")],
        datasets=DatasetConfig(max_length=128),
        training=TRAINING,
    )
    [adapter] = [a for a in build_training_defs(profile)[0] if a.key.path == ["qlora_adapter"]]
    resources = default_resources(state)
    upstream = [dg.AssetSpec(key) for key in ("base_model", "sft_dataset", "chat_template")]

    with dg.instance_for_test() as instance:
        killed: dict[str, Any] = {}
        killer = threading.Thread(target=_kill_training_at_first_checkpoint, args=(state, killed))
        killer.start()
        first = dg.materialize(
            [adapter, *upstream], resources=resources, instance=instance, raise_on_error=False
        )
        killer.join()
        assert killed, "no checkpoint was written before training ended"
        killed_at = int(killed["checkpoint"].name.split("-")[1])
        assert killed_at < TRAINING.max_steps
        assert not first.success
        [failure] = [e for e in first.all_events if e.event_type_value == "STEP_FAILURE"]
        user_failure = failure.step_failure_data.user_failure_data
        assert user_failure is not None and user_failure.description is not None
        assert "The training process failed with exit code" in user_failure.description
        assert user_failure.metadata["stderr_tail"].value.strip()

        second = dg.materialize(
            [adapter, *upstream], resources=resources, instance=instance, raise_on_error=False
        )
        assert second.success
        [event] = second.get_asset_materialization_events()
        metadata = event.materialization.metadata
        resumed_from = metadata["resumed_from_checkpoint"].value
        assert isinstance(resumed_from, str) and resumed_from.startswith("checkpoint-")
        assert int(resumed_from.split("-")[1]) >= killed_at
        assert metadata["steps"].value == TRAINING.max_steps

    # MLflow: the killed run is marked failed; the resumed run's loss history starts after the
    # checkpoint, and its system metrics were sampled.
    client = mlflow.MlflowClient(tracking_uri=resources["mlflow"].resolved_tracking_uri())
    runs = client.search_runs(
        [client.get_experiment_by_name("llm_assets").experiment_id], order_by=["start_time ASC"]
    )
    assert [run.info.status for run in runs] == ["FAILED", "FINISHED"]
    losses = client.get_metric_history(runs[1].info.run_id, "loss")
    assert losses and min(entry.step for entry in losses) > killed_at
    speeds = client.get_metric_history(runs[1].info.run_id, "tokens_per_second")
    assert speeds and all(entry.value > 0 for entry in speeds)
    assert client.get_metric_history(runs[1].info.run_id, "system/cpu_utilization_percentage")
