"""Preference tuning: which rows it reads, when it is skipped (and says why), and KTO and DPO
each training an adapter over a tiny SFT model on CPU."""

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from llm_assets.settings import PreferenceConfig, TrainingConfig
from llm_assets.training.preference import balanced_kto_weights
from llm_assets.training.preference_run import usable_rows, why_not_tuned


def _quarter(kto: int, dpo: int) -> Any:
    from datasets import Dataset, DatasetDict

    prompt = [{"role": "user", "content": "How do I restore a vault?"}]
    answer = [{"role": "assistant", "content": "Open Settings, then Vaults."}]
    return DatasetDict(
        kto=Dataset.from_list(
            [
                {"row_id": f"r{n}", "prompt": prompt, "completion": answer, "label": n % 2 == 0}
                for n in range(kto)
            ]
        ),
        dpo=Dataset.from_list(
            [
                {"pair_id": f"p{n}", "prompt": prompt, "chosen": answer, "rejected": answer}
                for n in range(dpo)
            ]
        ),
    )


def test_usable_rows_read_every_quarter_with_only_what_the_trainer_reads() -> None:
    quarters = {"2026-07-01": _quarter(3, 1), "2026-04-01": _quarter(2, 0)}
    kto = usable_rows(quarters, "kto")
    assert len(kto) == 5 and list(kto.columns) == ["prompt", "completion", "label"]
    dpo = usable_rows(quarters, "dpo")
    assert len(dpo) == 1 and list(dpo.columns) == ["prompt", "chosen", "rejected"]
    assert len(usable_rows({}, "kto")) == 0
    assert len(usable_rows(_quarter(4, 0), "kto")) == 4  # one quarter, as itself


def test_preference_tuning_is_skipped_with_a_reason() -> None:
    on = PreferenceConfig(method="kto", min_rows=4)
    assert why_not_tuned(on, "qlora", 4) is None
    assert "fewer than preference.min_rows (4)" in (why_not_tuned(on, "qlora", 3) or "")
    assert "3 usable KTO rows" in (why_not_tuned(on, "qlora", 3) or "")
    assert why_not_tuned(PreferenceConfig(method="off"), "qlora", 100) == "preference.method is off"
    assert "cannot be merged" in (why_not_tuned(on, "prompt_tuning", 100) or "")
    assert "DPO pairs" in (why_not_tuned(PreferenceConfig(method="dpo"), "lora", 0) or "")


def test_kto_weights_balance_the_rarer_kind_of_answer() -> None:
    assert balanced_kto_weights([True, True, True, False]) == (1.0, 3.0)
    assert balanced_kto_weights([True, False, False, False, False]) == (4.0, 1.0)
    assert balanced_kto_weights([True, True]) == (1.0, 1.0)


def test_kto_needs_two_rows_per_batch() -> None:
    with pytest.raises(ValidationError, match="per_device_train_batch_size >= 2"):
        PreferenceConfig(method="kto", per_device_train_batch_size=1)


@pytest.fixture(scope="module")
def sft_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llm_assets_tests.test_training_methods import build_tiny_training_inputs

    base, _ = build_tiny_training_inputs(tmp_path_factory.mktemp("preference"))
    return base


def _rows(method: str) -> Any:
    from datasets import Dataset

    frames = []
    for n in range(12):
        prompt = [{"role": "user", "content": f"How do I fix sync error {n}?"}]
        good = [{"role": "assistant", "content": f"Restart the client and retry step {n}."}]
        bad = [{"role": "assistant", "content": "It is the moon."}]
        if method == "kto":
            frames.append(
                {"prompt": prompt, "completion": good if n % 3 else bad, "label": n % 3 != 0}
            )
        else:
            frames.append({"prompt": prompt, "chosen": good, "rejected": bad})
    return Dataset.from_pandas(pd.DataFrame(frames), preserve_index=False)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["kto", "dpo"])
@pytest.mark.parametrize("training_method", ["lora", "qlora"])
def test_preference_trains_an_adapter_over_the_sft_model(
    sft_model: Path, tmp_path: Path, method: str, training_method: str
) -> None:
    from llm_assets.training.preference import train_preference_adapter

    logged: list[tuple[int, dict[str, float]]] = []
    preference = PreferenceConfig(
        method=method,  # type: ignore[arg-type]
        max_steps=5,
        save_steps=3,
        logging_steps=1,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        learning_rate=1e-3,
    )
    result = train_preference_adapter(
        str(sft_model),
        _rows(method),
        method,  # type: ignore[arg-type]
        preference,
        TrainingConfig(method=training_method),  # type: ignore[arg-type]
        128,
        tmp_path,
        lambda metrics, step: logged.append((step, metrics)),
    )
    assert result.global_step == 5
    assert (result.output_dir / "adapter_config.json").is_file()
    assert 0 < result.trainable_parameters < result.total_parameters
    assert sorted({step for step, _ in logged}) == [1, 2, 3, 4, 5]
    # The tuned model tells the liked answers from the others better than the SFT one does.
    margins = [metrics["rewards/margins"] for _, metrics in logged if "rewards/margins" in metrics]
    assert margins and margins[-1] > margins[0]
    assert (tmp_path / "checkpoints" / "checkpoint-3").is_dir()

    # Killed after the checkpoint at step 3: a re-run resumes there.
    resumed = train_preference_adapter(
        str(sft_model), _rows(method), method, preference,  # type: ignore[arg-type]
        TrainingConfig(method=training_method), 128, tmp_path, lambda m, s: None,  # type: ignore[arg-type]
    )  # fmt: skip
    assert resumed.resumed_from == "checkpoint-5"
