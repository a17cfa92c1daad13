"""Fine-tune in a process of its own, launched by `accelerate launch` through Dagster Pipes:

    .venv/bin/python -m accelerate.commands.launch --config_file conf/accelerate/cpu.yaml \\
        --quiet -m llm_assets.training.fine_tune \\
        --spec var/artifacts/work/qlora_adapter/<inputs digest>/spec.json

The `qlora_adapter` asset writes the spec (`launch.TrainingSpec`: base model, dataset folder,
training config, the MLflow run it created) and runs that command; the same command runs by hand
(no Dagster) and prints the result as JSON. Under a multi-GPU config every process trains; only
the main one (rank 0) talks to Dagster and MLflow:

- Dagster Pipes: each logged step streams back as a log line of the Dagster run (loss, learning
  rate, grad norm, tokens/s, peak memory), and the end reports the materialization metadata;
- MLflow: the asset's run is reopened with system metrics on, every logged step's metrics go to
  its history, and the trained adapter is logged as an MLflow model (`mlflow_model_uri`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from llm_assets.allocator import allocator_in_use, restart_with_allocator
from llm_assets.training.launch import TrainingSpec
from llm_assets.training.sft import AdapterTrainingResult, MetricsReporter, train_adapter

# Trainer log keys shown in a step's log line and the history table, in this order.
STEP_COLUMNS = {
    "loss": "loss",
    "learning_rate": "lr",
    "grad_norm": "grad norm",
    "tokens_per_second": "tokens/s",
    "peak_memory_mib": "peak MiB",
}


# The pid of the Dagster step process that launched this one (set by the local launcher).
ORCHESTRATOR_PID_ENV = "LLM_ASSETS_ORCHESTRATOR_PID"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, type=Path, help="the TrainingSpec JSON file")
    spec = TrainingSpec.read(parser.parse_args(argv).spec)
    if argv is None:
        # As a program only: the process is replaced, so nothing before this may matter.
        restart_with_allocator(spec.config.allocator)
    if os.environ.get(ORCHESTRATOR_PID_ENV):
        watch_orchestrator(int(os.environ[ORCHESTRATOR_PID_ENV]), _end_process_group)
    if int(os.environ.get("RANK", "0")) != 0:
        train(spec, lambda metrics, step: None)  # other ranks train their share, silently
        return
    with open_pipes() as pipes:
        metadata = train_and_track(spec, pipes)
        if pipes is None:
            print(json.dumps(metadata, indent=2, default=str))
        else:
            pipes.report_asset_materialization(metadata=metadata)


def watch_orchestrator(
    pid: int, on_gone: Callable[[], None], interval_seconds: float = 2.0
) -> threading.Thread:
    """Call `on_gone` (from a daemon thread) once process `pid` has ended.

    The training runs in a process group of its own, so a step process that dies without
    stopping it (SIGKILL, SIGHUP, an OOM kill of that process alone) would leave it training on,
    beside the next run that resumes from the same checkpoints."""
    import psutil

    try:
        born = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        born = None

    def alive() -> bool:
        try:
            process = psutil.Process(pid)
            return process.create_time() == born and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def watch() -> None:
        while alive():
            time.sleep(interval_seconds)
        on_gone()

    thread = threading.Thread(target=watch, name="orchestrator-watch", daemon=True)
    thread.start()
    return thread


def _end_process_group() -> None:
    """The launcher and every training process of this run, at once: the last complete
    checkpoint stays the one to resume from."""
    print("The Dagster step that launched this training is gone: stopping.", file=sys.stderr)
    os.killpg(os.getpgrp(), signal.SIGKILL)


@contextlib.contextmanager
def open_pipes() -> Iterator[Any]:
    """The Dagster Pipes context when Dagster launched this process, else None."""
    from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

    if not PipesEnvVarParamsLoader().is_dagster_pipes_process():
        yield None
        return
    with open_dagster_pipes() as pipes:
        yield pipes


def train(spec: TrainingSpec, report: MetricsReporter) -> AdapterTrainingResult:
    from datasets import load_from_disk

    splits = load_from_disk(spec.dataset_dir)
    if spec.preference_method:
        from llm_assets.settings import PreferenceConfig
        from llm_assets.training.preference import train_preference_adapter

        return train_preference_adapter(
            spec.base_model_path,
            splits["train"],
            spec.preference_method,  # type: ignore[arg-type]
            PreferenceConfig.model_validate(spec.preference or {}),
            spec.config,
            spec.max_length,
            Path(spec.work_dir),
            report,
            chat_template=spec.chat_template,
        )
    return train_adapter(
        spec.base_model_path,
        splits["train"],
        splits["validation"],
        spec.config,
        spec.max_length,
        Path(spec.work_dir),
        report,
        chat_template=spec.chat_template,
    )


def train_and_track(spec: TrainingSpec, pipes: Any) -> dict[str, Any]:
    """Train inside the reopened MLflow run; returns the materialization metadata."""
    import mlflow

    config = spec.config
    mlflow.set_tracking_uri(spec.mlflow_tracking_uri)
    interval = os.environ.get("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL")
    mlflow.set_system_metrics_sampling_interval(
        float(interval or config.system_metrics_interval_seconds)
    )
    mlflow.set_system_metrics_samples_before_logging(1)

    def report(metrics: dict[str, float], step: int) -> None:
        mlflow.log_metrics(metrics, step=step)
        max_steps = (spec.preference or {}).get("max_steps", config.max_steps)
        line = format_step(metrics, step, int(max_steps))
        if pipes is None:
            print(line, flush=True)
        else:
            pipes.log.info(line)

    allocator = allocator_in_use()
    with mlflow.start_run(run_id=spec.mlflow_run_id, log_system_metrics=True):
        mlflow.set_tag("training.allocator_in_use", allocator)
        result = train(spec, report)
        mlflow.log_metrics(
            {
                "train_loss_final": result.train_loss,
                "rows_dropped_too_long": result.rows_dropped_too_long,
                "peak_memory_mib": result.peak_memory_mib,
            },
            step=result.global_step,
        )
        model_uri = log_model(spec, result)
    return {**materialization_metadata(result, model_uri), "allocator": allocator}


def log_model(spec: TrainingSpec, result: AdapterTrainingResult) -> str:
    from transformers import AutoTokenizer

    from llm_assets.training.mlflow_model import load_trained_model, log_trained_model

    model = result.trained_model
    if model is None:
        model = load_trained_model(spec.base_model_path, result.output_dir, result.method)
    return log_trained_model(
        model,
        AutoTokenizer.from_pretrained(result.output_dir),
        spec.base_model_path,
        metadata={
            "method": result.method,
            "base_model_id": spec.base_model_id,
            "global_step": result.global_step,
        },
    )


def format_step(metrics: dict[str, float], step: int, max_steps: int) -> str:
    """One logged step as a line: `step 10/60 · loss 2.3100 · lr 4.1e-03 · …`."""
    of = f"/{max_steps}" if max_steps > 0 else ""
    parts = [f"step {step}{of}"]
    for key, label in STEP_COLUMNS.items():
        if key in metrics:
            value = metrics[key]
            shown = f"{value:.1e}" if key == "learning_rate" else f"{value:,.4g}"
            parts.append(f"{label} {shown}")
    for key in ("eval_loss", "train_loss"):
        if key in metrics:
            parts.append(f"{key.replace('_', ' ')} {metrics[key]:.4g}")
    return " · ".join(parts)


def history_table(log_history: list[dict[str, float]]) -> str:
    """The logged training steps as a Markdown table (at most 40 rows, evenly spread)."""
    rows = [entry for entry in log_history if "loss" in entry]
    if len(rows) > 40:
        rows = [rows[round(i * (len(rows) - 1) / 39)] for i in range(40)]
    header = ["step", *STEP_COLUMNS.values()]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in rows:
        cells = [str(int(entry.get("step", 0)))]
        for key in STEP_COLUMNS:
            value = entry.get(key)
            cells.append("" if value is None else f"{value:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def materialization_metadata(result: AdapterTrainingResult, model_uri: str) -> dict[str, Any]:
    """What the Dagster asset shows (raw Pipes metadata values; Markdown marked as such)."""
    losses = [entry["loss"] for entry in result.log_history if "loss" in entry]
    speeds = [e["tokens_per_second"] for e in result.log_history if "tokens_per_second" in e]
    return {
        "method": result.method,
        "steps": result.global_step,
        "train_loss": result.train_loss,
        "first_logged_loss": losses[0] if losses else float("nan"),
        "last_logged_loss": losses[-1] if losses else float("nan"),
        "resumed_from_checkpoint": result.resumed_from or "none",
        "rows_dropped_too_long": result.rows_dropped_too_long,
        "trainable_parameters": result.trainable_parameters,
        "total_parameters": result.total_parameters,
        "tokens_per_second": sum(speeds) / len(speeds) if speeds else float("nan"),
        "peak_memory_mib": round(result.peak_memory_mib, 1),
        "seconds": round(result.seconds, 1),
        "mlflow_model_uri": model_uri,
        "training_history": {"raw_value": history_table(result.log_history), "type": "md"},
    }


if __name__ == "__main__":
    main()
