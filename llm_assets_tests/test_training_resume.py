"""A training process killed mid-run: Dagster reports the failure with the process's stderr,
and the next materialization resumes from the last checkpoint instead of starting over. The same
when the whole run is stopped as a user or a machine stops it: SIGTERM to the CLI, or SIGKILL to
its whole process tree, the next `llm-assets materialize` in a fresh process taking over.

`qlora_adapter` is materialized on its own, its inputs (a tiny base, a small dataset, the chat
template) stored beforehand where the asset store reads them. The training runs as it does in
production: `accelerate launch` through the Pipes launcher, then a SIGKILL to the training
process (not the launcher) as soon as a checkpoint exists, as a crash or a pre-empted machine
would.
"""

import os
import signal
import subprocess
import sys
import textwrap
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

from .test_run_recovery import dagster_home
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
    from transformers import AutoTokenizer

    from llm_assets.contracts import BaseModelFolder, ChatTemplate
    from llm_assets.datasets.chat_template import template_digest, training_chat_template

    assets = state / "assets"
    assets.mkdir(parents=True)
    folder = BaseModelFolder(
        kind="tiny",
        model_id="tiny",
        revision=None,
        license="apache-2.0",
        path=str(base),
        parameters=None,
        weights_digest="w1",
    )
    (assets / "base_model.json").write_text(folder.model_dump_json())
    template, origin = training_chat_template(AutoTokenizer.from_pretrained(base))
    chat_template = ChatTemplate(
        template=template,
        origin=origin,
        digest=template_digest(template),
        path=str(state / "chat_template.jinja"),
        base_model_id="tiny",
        base_weights_digest="w1",
    )
    (assets / "chat_template.json").write_text(chat_template.model_dump_json())
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


# One `llm-assets materialize --select qlora_adapter` as the CLI runs it (recovery of dead runs,
# the GPU pool claimed by the CLI, SIGTERM as Ctrl-C), over the stored inputs.
CLI_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import dagster as dg
    from llm_assets import cli
    from llm_assets.defs.resources import default_resources
    from llm_assets.defs.training import build_training_defs
    from llm_assets.settings import DatasetConfig, Profile, SourceConfig, TrainingConfig

    profile = Profile(
        sources=[SourceConfig(name="tickets", kind="jsonl", path="tickets.jsonl")],
        datasets=DatasetConfig(max_length=128),
        training=TrainingConfig.model_validate_json(sys.argv[2]),
    )
    [adapter] = [a for a in build_training_defs(profile)[0] if a.key.path == ["qlora_adapter"]]
    upstream = [dg.AssetSpec(key) for key in ("base_model", "sft_dataset", "chat_template")]
    resources = default_resources(Path(sys.argv[1]))
    defs = dg.Definitions(assets=[adapter, *upstream], resources=resources)
    instance = dg.DagsterInstance.get()
    cli.prepare_instance(instance, resources["mlflow"])
    try:
        ok = cli._run(defs, instance, {adapter.key})
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(130 if cli._INTERRUPTED["run"] else 0 if ok else 1)
    """
)


def _materialize_in_a_process(
    state: Path, home: Path, log: Path, training: TrainingConfig = TRAINING
) -> subprocess.Popen[bytes]:
    script = home.parent / "materialize.py"
    script.write_text(CLI_CHILD)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, str(script), str(state), training.model_dump_json()],
            env={**os.environ, "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _checkpoint_after(state: Path, step: int, process: subprocess.Popen[bytes]) -> Path:
    """Wait for a complete checkpoint past `step`; fail if the run ends first."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for folder in (state / "artifacts" / "work" / "qlora_adapter").glob("*/checkpoints"):
            latest = latest_checkpoint(folder)
            if latest is not None and int(latest.name.split("-")[1]) > step:
                return latest
        assert process.poll() is None, "the run ended before writing a checkpoint"
        time.sleep(0.05)
    raise AssertionError("no checkpoint within 300 s")


def _tree(pid: int) -> list[Any]:
    import psutil

    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def _gone(process: Any) -> bool:
    import psutil

    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_stopped_or_killed_cli_run_resumes_in_a_fresh_process_and_frees_the_gpu(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    _store_inputs(state, *build_tiny_training_inputs(tmp_path))
    home = dagster_home(tmp_path)

    # 1. SIGTERM to the CLI mid-training, as a service manager or `kill` sends it.
    first = _materialize_in_a_process(state, home, tmp_path / "first.log")
    stopped_at = _checkpoint_after(state, 0, first)
    training = [p for p in _tree(first.pid) if "fine_tune" in " ".join(p.cmdline())]
    signalled = time.monotonic()
    first.send_signal(signal.SIGTERM)
    code = first.wait(timeout=60)
    seconds = time.monotonic() - signalled

    assert code == 130, (tmp_path / "first.log").read_text()[-3000:]
    assert seconds < 10, f"the run took {seconds:.1f} s to stop"
    assert training and all(_gone(process) for process in training)
    assert latest_checkpoint(stopped_at.parent) is not None  # checkpoints intact
    assert not (state / "artifacts" / "qlora_adapter").exists()  # no half-written adapter

    # 2. The next run resumes; then its whole process tree is SIGKILLed, as an OOM kill does.
    second = _materialize_in_a_process(state, home, tmp_path / "second.log")
    killed_at = _checkpoint_after(state, int(stopped_at.name.split("-")[1]), second)
    for process in _tree(second.pid):
        process.send_signal(signal.SIGKILL)
    second.wait()

    # 3. A fresh process: the dead run is marked failed, its GPU slot freed, training resumes.
    third = _materialize_in_a_process(state, home, tmp_path / "third.log")
    code = third.wait(timeout=600)
    output = (tmp_path / "third.log").read_text()

    assert code == 0, output[-3000:]
    assert "marked failed: its process (pid" in output
    assert "Waiting for a slot" not in output
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_run_records(order_by="create_timestamp", ascending=True)
        statuses = [record.dagster_run.status for record in runs]
        assert statuses == [dg.DagsterRunStatus.FAILURE] * 2 + [dg.DagsterRunStatus.SUCCESS]
        event = instance.get_latest_materialization_event(dg.AssetKey("qlora_adapter"))
        assert event is not None and event.asset_materialization is not None
        metadata = event.asset_materialization.metadata
        resumed_from = metadata["resumed_from_checkpoint"].value
        assert isinstance(resumed_from, str) and resumed_from.startswith("checkpoint-")
        assert int(resumed_from.split("-")[1]) >= int(killed_at.name.split("-")[1])
        assert metadata["steps"].value == TRAINING.max_steps
        info = instance.event_log_storage.get_concurrency_info("gpu")
        assert not info.claimed_slots and not info.pending_steps
        killed_run_id = runs[1].dagster_run.run_id

    # MLflow: the stopped run ended FAILED itself, the killed one was marked KILLED by the next.
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{state / 'mlflow' / 'mlflow.db'}")
    tracked = client.search_runs(
        [client.get_experiment_by_name("llm_assets").experiment_id], order_by=["start_time ASC"]
    )
    assert [run.info.status for run in tracked] == ["FAILED", "KILLED", "FINISHED"]
    assert tracked[1].data.tags["dagster.run_id"] == killed_run_id
    assert "its MLflow runs marked KILLED" in output
