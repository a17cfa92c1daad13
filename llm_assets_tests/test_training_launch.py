"""How the training process is started: the accelerate command for each config, and the
launcher resource that runs a process through Dagster Pipes and reports its failures."""

import sys
from pathlib import Path

import dagster as dg
import pytest

from llm_assets.defs.resources import TrainingLauncherResource
from llm_assets.settings import TrainingConfig
from llm_assets.training.launch import (
    ACCELERATE_CONFIG_DIR,
    AccelerateConfigError,
    TrainingSpec,
    resolve_accelerate_config,
    training_command,
)

SPEC = Path("/work/spec.json")


@pytest.mark.parametrize(
    ("name", "distributed_type", "processes"),
    [("cpu", "NO", 1), ("single_gpu", "NO", 1), ("ddp", "MULTI_GPU", 2), ("fsdp_qlora", "FSDP", 2)],
)
def test_training_command_launches_fine_tune_with_each_accelerate_config(
    name: str, distributed_type: str, processes: int
) -> None:
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    config = resolve_accelerate_config(name, cuda_available=True)
    command = training_command("/venv/bin/python", config, SPEC)

    assert command == [
        "/venv/bin/python",
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ACCELERATE_CONFIG_DIR / f"{name}.yaml"),
        "--quiet",
        "-m",
        "llm_assets.training.fine_tune",
        "--spec",
        str(SPEC),
    ]
    # accelerate reads the line as we mean it: our module, run with --spec, under this config.
    args = launch_command_parser().parse_args(command[3:])
    assert args.module and args.quiet
    assert args.training_script == "llm_assets.training.fine_tune"
    assert args.training_script_args == ["--spec", str(SPEC)]
    loaded = load_config_from_file(args.config_file)
    assert loaded.distributed_type.value == distributed_type
    assert loaded.num_processes == processes
    assert loaded.use_cpu == (name == "cpu")


def test_auto_config_is_cpu_without_cuda_and_single_gpu_with_it() -> None:
    assert resolve_accelerate_config("auto", cuda_available=False).name == "cpu.yaml"
    assert resolve_accelerate_config("auto", cuda_available=True).name == "single_gpu.yaml"


def test_num_processes_overrides_the_config_file() -> None:
    command = training_command("python", ACCELERATE_CONFIG_DIR / "ddp.yaml", SPEC, 8)
    assert command[5:7] == ["--num_processes", "8"]


def test_missing_accelerate_config_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(AccelerateConfigError) as error:
        resolve_accelerate_config("deepspeed", cuda_available=True)
    message = str(error.value)
    assert "deepspeed.yaml does not exist" in message
    assert "'cpu', 'ddp', 'fsdp_qlora', 'single_gpu'" in message
    own = tmp_path / "mine.yaml"
    own.write_text("distributed_type: 'NO'\n")
    assert resolve_accelerate_config("mine.yaml", False, profile_dir=tmp_path) == own
    with pytest.raises(AccelerateConfigError, match="absent.yaml does not exist"):
        resolve_accelerate_config("conf/absent.yaml", False, profile_dir=tmp_path)


def test_training_spec_round_trips_through_json(tmp_path: Path) -> None:
    spec = TrainingSpec(
        base_model_path="/models/base",
        dataset_dir="/data/sft",
        work_dir="/work",
        training=TrainingConfig(method="prompt_tuning", packing=True).model_dump(mode="json"),
        max_length=512,
        chat_template="{{ messages }}",
        mlflow_tracking_uri="sqlite:///mlflow.db",
        mlflow_run_id="abc",
    )
    again = TrainingSpec.read(spec.write(tmp_path / "spec.json"))
    assert again == spec
    assert again.config.method == "prompt_tuning" and again.config.packing


def _run_through_launcher(
    script: str, instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    @dg.asset
    def trained(
        context: dg.AssetExecutionContext, training_launcher: TrainingLauncherResource
    ) -> dg.MaterializeResult:
        invocation = training_launcher.run(context=context, command=[sys.executable, "-c", script])
        return invocation.get_materialize_result()

    return dg.materialize(
        [trained],
        resources={"training_launcher": TrainingLauncherResource(stderr_tail_lines=3)},
        instance=instance,
        raise_on_error=False,
    )


def test_launcher_streams_logs_and_reports_the_materialization() -> None:
    with dg.instance_for_test() as instance:
        result = _run_through_launcher(
            "from dagster_pipes import open_dagster_pipes\n"
            "with open_dagster_pipes() as pipes:\n"
            "    pipes.log.info('step 1/2 · loss 2.5')\n"
            "    pipes.report_asset_materialization(metadata={'steps': 2, 'train_loss': 2.5})\n",
            instance,
        )
        assert result.success
        [event] = result.get_asset_materialization_events()
        metadata = event.materialization.metadata
        assert metadata["steps"].value == 2 and metadata["train_loss"].value == 2.5
        logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
        assert "step 1/2 · loss 2.5" in logged


def test_launcher_failure_quotes_the_tail_of_stderr() -> None:
    result = _run_through_launcher(
        "import sys\n"
        "for n in range(10): print(f'noise {n}', file=sys.stderr)\n"
        "sys.exit('OSError: /models/base is not a model folder')\n"
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    user_failure = failure.step_failure_data.user_failure_data
    assert user_failure is not None and user_failure.description is not None
    assert user_failure.description.startswith("The training process failed with exit code 1.")
    tail = ["noise 8", "noise 9", "OSError: /models/base is not a model folder"]
    assert user_failure.description.endswith("\n".join(tail))
    assert user_failure.metadata["stderr_tail"].value.splitlines() == tail


def test_training_stops_itself_when_the_process_that_launched_it_dies() -> None:
    import subprocess
    import threading
    import time

    from llm_assets.training.fine_tune import watch_orchestrator

    orchestrator = subprocess.Popen(["sleep", "60"])
    gone = threading.Event()
    watcher = watch_orchestrator(orchestrator.pid, gone.set, interval_seconds=0.1)
    time.sleep(0.5)
    assert not gone.is_set()  # alive: training goes on

    orchestrator.kill()
    orchestrator.wait()

    assert gone.wait(timeout=5)
    watcher.join(timeout=5)
    assert not watcher.is_alive()
