"""What the training process is given and how it is started: the spec file and the
`accelerate launch` command line.

The orchestrator (the `qlora_adapter` asset) writes a `TrainingSpec` as JSON and runs
`training_command(...)`; `llm_assets.training.fine_tune` reads the spec back. Nothing here
imports torch, so building a command stays cheap and testable without a GPU.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llm_assets.settings import PROJECT_ROOT, TrainingConfig
from llm_assets.storage import atomic_directory, atomic_file

ACCELERATE_CONFIG_DIR = PROJECT_ROOT / "conf" / "accelerate"
TRAINING_MODULE = "llm_assets.training.fine_tune"


class AccelerateConfigError(ValueError):
    """`training.accelerate_config` names no usable file; the message says which exist."""


@dataclass(frozen=True)
class TrainingSpec:
    """Everything the training process needs, written to one JSON file beside the checkpoints.

    `mlflow_run_id` is a run the orchestrator created (tags, params, inputs); the training
    process reopens it to log metric history, system metrics and the model.
    """

    base_model_path: str
    dataset_dir: str
    work_dir: str
    training: dict[str, Any]
    max_length: int
    chat_template: str | None
    mlflow_tracking_uri: str
    mlflow_run_id: str
    base_model_id: str = ""
    # Preference tuning (kto | dpo) instead of SFT: the `preference:` section, and the dataset
    # folder holds one split, "train", of that method's rows.
    preference_method: str = ""
    preference: dict[str, Any] | None = None

    @property
    def config(self) -> TrainingConfig:
        return TrainingConfig.model_validate(self.training)

    def write(self, path: Path) -> Path:
        with atomic_file(path) as temporary:
            temporary.write_text(json.dumps(asdict(self), indent=2, sort_keys=True), "utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> TrainingSpec:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


def available_accelerate_configs() -> list[str]:
    return sorted(path.stem for path in ACCELERATE_CONFIG_DIR.glob("*.yaml"))


def resolve_accelerate_config(
    name: str, cuda_available: bool, profile_dir: Path | None = None
) -> Path:
    """The accelerate config file for `training.accelerate_config`: `auto` is `cpu` without
    CUDA and `single_gpu` with it; a bare name is a file of conf/accelerate/; anything with a
    slash or a .yaml suffix is a path (relative ones start at `profile_dir`)."""
    if name == "auto":
        name = "single_gpu" if cuda_available else "cpu"
    if "/" in name or name.endswith((".yaml", ".yml")):
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = (profile_dir or PROJECT_ROOT) / path
    else:
        path = ACCELERATE_CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise AccelerateConfigError(
            f"training.accelerate_config: {path} does not exist. Use auto or one of "
            f"{available_accelerate_configs()} (files in {ACCELERATE_CONFIG_DIR}), or the path "
            "of a file written by `accelerate config --config_file <path>`"
        )
    return path


def training_command(
    python: str, accelerate_config: Path, spec_path: Path, num_processes: int | None = None
) -> list[str]:
    """`<python> -m accelerate.commands.launch --config_file <yaml> [--num_processes N]
    --quiet -m llm_assets.training.fine_tune --spec <spec.json>`.

    The launcher runs as a module of the same interpreter (never an `accelerate` found on
    PATH), and starts the training module with that interpreter too. `--quiet` keeps the
    launcher's own traceback out of stderr, so its tail is the training process's error.
    """
    command = [python, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config)]
    if num_processes is not None:
        command += ["--num_processes", str(num_processes)]
    return [*command, "--quiet", "-m", TRAINING_MODULE, "--spec", str(spec_path)]


def save_dataset_once(dataset: Any, folder: Path) -> Path:
    """Save a `DatasetDict` where the training process reads it; kept when already there (a
    resumed run reads the very rows the killed one did)."""
    if not folder.exists():
        with atomic_directory(folder) as temporary:
            dataset.save_to_disk(str(temporary))
    return folder
