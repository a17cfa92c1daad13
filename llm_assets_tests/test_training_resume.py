"""A training process killed mid-run resumes from its last checkpoint on the next run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm_assets.datasets.chat_template import to_messages
from llm_assets.settings import TinyModelConfig, TrainingConfig
from llm_assets.training.sft import latest_checkpoint

pytestmark = pytest.mark.slow

TRAINING = TrainingConfig(
    max_steps=30, save_steps=5, logging_steps=1, per_device_train_batch_size=4, learning_rate=5e-3
)
# Runs train_adapter in its own process; each logged step sleeps so the test can kill it
# between checkpoints, as a crash or a pre-empted machine would.
TRAIN_SCRIPT = """
import json, sys, time
from pathlib import Path
from datasets import load_from_disk
from llm_assets.settings import TrainingConfig
from llm_assets.training.sft import train_adapter
base, data, work, config, delay = sys.argv[1:6]
splits = load_from_disk(data)
def report(metrics, step):
    print("STEP", step, flush=True)
    time.sleep(float(delay))
config = TrainingConfig.model_validate_json(config)
result = train_adapter(
    base, splits["train"], splits["validation"], config, 256, Path(work), report
)
summary = {"resumed_from": result.resumed_from, "global_step": result.global_step}
print("RESULT " + json.dumps(summary))
"""


@pytest.fixture(scope="module")
def base_and_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from datasets import Dataset, DatasetDict

    from llm_assets.training.base_model import build_tiny_base_model

    folder = tmp_path_factory.mktemp("resume")
    questions = [f"How do I fix sync error {n}?" for n in range(40)]
    texts = [f"{q} Restart the client and retry step {n}." for n, q in enumerate(questions)]
    tiny = TinyModelConfig(vocab_size=400, hidden_size=64, intermediate_size=128, pretrain_steps=0)
    build_tiny_base_model(texts, tiny, folder / "base", seed=1)
    rows = [
        {"messages": to_messages(q, f"Restart the client and retry step {n}.")}
        for n, q in enumerate(questions)
    ]
    DatasetDict(
        train=Dataset.from_list(rows[:32]), validation=Dataset.from_list(rows[32:])
    ).save_to_disk(str(folder / "data"))
    return folder / "base", folder / "data"


def _train(base: Path, data: Path, work: Path, delay: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            TRAIN_SCRIPT,
            str(base),
            str(data),
            str(work),
            TRAINING.model_dump_json(),
            str(delay),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_killed_training_resumes_from_last_checkpoint(
    base_and_data: tuple[Path, Path], tmp_path: Path
) -> None:
    base, data = base_and_data
    work = tmp_path / "work"
    first = _train(base, data, work, delay=0.4)
    deadline = time.monotonic() + 240
    while latest_checkpoint(work / "checkpoints") is None:
        assert first.poll() is None, first.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    checkpoint = latest_checkpoint(work / "checkpoints")
    assert checkpoint is not None
    killed_at = int(checkpoint.name.split("-")[1])
    assert killed_at < TRAINING.max_steps

    second = _train(base, data, work, delay=0.0)
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output[-3000:]
    result = json.loads(output.rsplit("RESULT ", 1)[1].splitlines()[0])
    assert result["resumed_from"].startswith("checkpoint-")
    assert int(result["resumed_from"].split("-")[1]) >= killed_at
    assert result["global_step"] == TRAINING.max_steps
    logged_steps = [
        int(line.split()[1]) for line in output.splitlines() if line.startswith("STEP ")
    ]
    assert logged_steps and min(logged_steps) > killed_at
