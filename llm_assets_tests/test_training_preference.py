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


@pytest.fixture(scope="module")
def smollm2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct as a model folder, with the template training gives it."""
    from llm_assets_tests.conftest import SMOLLM2_GGUF, require_smollm2

    require_smollm2()
    from llm_assets.datasets.chat_template import load_chat_tokenizer, training_chat_template
    from llm_assets.training.gguf import convert_gguf_to_folder, resolve_gguf_file

    folder = tmp_path_factory.mktemp("smollm2")
    convert_gguf_to_folder(resolve_gguf_file(SMOLLM2_GGUF, folder), folder / "base")
    tokenizer = load_chat_tokenizer(str(folder / "base"))
    tokenizer.chat_template = training_chat_template(tokenizer)[0]
    tokenizer.save_pretrained(folder / "base")
    return folder / "base"


def _fixture_train_split() -> Any:
    import json

    from llm_assets.datasets.preferences import preference_data
    from llm_assets.settings import ConversationTemplate
    from llm_assets.sources.feedback import Exchange
    from llm_assets_tests.conftest import FEEDBACK_FIXTURE

    rows = [json.loads(line) for line in FEEDBACK_FIXTURE.read_text().splitlines()]
    train = [Exchange.from_mapping(row) for row in rows if row["split"] == "train"]
    return preference_data(train, 4, "2026-10-01", ConversationTemplate(), "Support assistant.")


def _pair_margins(model_path: Path, adapter: Path | None, pairs: pd.DataFrame) -> list[float]:
    """log p(chosen) - log p(rejected) of each pair under the model (with `adapter`)."""
    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.generation import ModelUnderTest, load_model
    from llm_assets.evaluation.perplexity import pair_margins

    tokenizer = load_chat_tokenizer(str(model_path))
    model = load_model(
        ModelUnderTest("m", str(model_path), str(adapter) if adapter else None, "lora")
    )
    return pair_margins(model, tokenizer, pairs.to_dict("records"), 384)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["kto", "dpo"])
def test_smollm2_learns_the_shipped_feedback(
    smollm2_folder: Path, tmp_path: Path, method: str
) -> None:
    """The real model, the real feedback fixture: five steps of KTO or DPO on its train split
    (real SmolLM2 answers, judged by hand) widen the gap between the corrections and the
    answers they corrected, on average over the split's pairs (ten rows were seen)."""
    from datasets import Dataset

    from llm_assets.training.preference import TRAINER_COLUMNS, train_preference_adapter

    data = _fixture_train_split()
    rows = data.unpaired if method == "kto" else data.paired
    dataset = Dataset.from_pandas(
        rows[TRAINER_COLUMNS[method]].reset_index(drop=True), preserve_index=False
    )
    preference = PreferenceConfig(
        method=method,  # type: ignore[arg-type]
        max_steps=5,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        learning_rate=5e-4,
        logging_steps=1,
    )
    logged: list[dict[str, float]] = []
    result = train_preference_adapter(
        str(smollm2_folder),
        dataset,
        method,  # type: ignore[arg-type]
        preference,
        TrainingConfig(method="lora", lora_r=8, lora_alpha=16, lora_last_layers=4),
        384,
        tmp_path,
        lambda metrics, step: logged.append(metrics),
    )
    assert result.global_step == 5 and result.trainable_parameters > 0
    assert len([m for m in logged if "loss" in m]) == 5
    assert all(m["loss"] == m["loss"] for m in logged if "loss" in m)  # no NaN
    pairs = data.paired
    before = _pair_margins(smollm2_folder, None, pairs)
    after = _pair_margins(smollm2_folder, result.output_dir, pairs)
    gains = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(gains) / len(gains) > 0, gains
