"""The answer-only SFT loss: the same loss and gradients as the model's own forward, and the
same training as trl's SFTTrainer, while projecting only answer positions through the LM head."""

from pathlib import Path
from typing import Any

import pytest

from llm_assets.settings import TrainingConfig
from llm_assets_tests.conftest import save_tiny_llama


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


# Both sides in bf16 autocast agree to about 1e-7 here; the answer-only loss computed outside
# autocast (in fp32) while trl's runs inside differs by 4e-5 on these rows.
TOLERANCE = {"off": 1e-4, "on": 1e-5}


def _lora_model(folder: Path) -> Any:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    return get_peft_model(base, config).train()


def _batch(answer_from: list[int]) -> dict[str, Any]:
    """Two rows, right-padded, with the loss taken from `answer_from[row]` on (-100 before)."""
    import torch

    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(3, 100, (2, 24), generator=generator)
    attention = torch.ones_like(input_ids)
    attention[1, 20:] = 0
    labels = input_ids.clone()
    for row, start in enumerate(answer_from):
        labels[row, :start] = -100
    labels[attention == 0] = -100
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def _lora_gradients(model: Any) -> list[Any]:
    return [p.grad.clone() for n, p in model.named_parameters() if "lora_" in n]


def test_the_loss_and_gradients_are_the_models_own(tiny_folder: Path) -> None:
    import torch

    from llm_assets.training.answer_loss import answer_loss

    batch = _batch([10, 15])
    model = _lora_model(tiny_folder)
    expected = model(**batch).loss
    expected.backward()
    expected_gradients = _lora_gradients(model)
    model.zero_grad()

    found = answer_loss(model, batch)
    found.loss.backward()
    assert torch.allclose(found.loss, expected, atol=1e-5)
    for ours, theirs in zip(_lora_gradients(model), expected_gradients, strict=True):
        assert torch.allclose(ours, theirs, atol=1e-5)
    # Row 0 scores positions 10..23, row 1 positions 15..19 (the rest is padding).
    assert found.answer_tokens == 14 + 5
    assert 0 <= found.correct_tokens <= found.answer_tokens and found.entropy_sum > 0

    # Under gradient accumulation the sum is divided by the tokens of every micro-batch.
    accumulated = answer_loss(model, batch, num_items_in_batch=38)
    assert torch.allclose(accumulated.loss * 38, found.loss * 19, atol=1e-4)


def test_a_batch_without_answer_tokens_is_a_differentiable_zero(tiny_folder: Path) -> None:
    from llm_assets.training.answer_loss import answer_loss

    model = _lora_model(tiny_folder)
    found = answer_loss(model, _batch([24, 24]))
    found.loss.backward()
    assert float(found.loss) == 0.0 and found.answer_tokens == 0


@pytest.mark.slow
@pytest.mark.parametrize("cpu_bf16", ["off", "on"])
def test_training_matches_trls_sft_trainer_step_for_step(tmp_path: Path, cpu_bf16: str) -> None:
    """Three optimizer steps of LoRA through build_sft_trainer (the answer-only loss) and
    through trl's SFTTrainer itself, same rows and seed: the same losses, the same metrics, the
    same validation loss; in
    fp32 and in bf16 autocast (where the answer-only loss must enter the autocast that
    accelerate wraps only around the model's own forward)."""
    from datasets import load_from_disk
    from trl import SFTTrainer

    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.training.sft import build_sft_trainer, peft_config_from, sft_config_from
    from llm_assets_tests.test_training_methods import build_tiny_training_inputs

    base, data = build_tiny_training_inputs(tmp_path)
    rows = load_from_disk(str(data))["train"]
    config = TrainingConfig(
        method="lora",
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        cpu_bf16=cpu_bf16,  # type: ignore[arg-type]
    )
    overrides = {"max_steps": 3, "logging_steps": 1, "save_strategy": "no", "eval_strategy": "no"}

    def history(trainer: Any) -> list[dict[str, float]]:
        trainer.train()
        keys = ("loss", "mean_token_accuracy", "entropy", "num_tokens")
        return [{k: e[k] for k in keys} for e in trainer.state.log_history if "loss" in e]

    tokenizer = load_chat_tokenizer(str(base))
    ours = build_sft_trainer(
        str(base), tokenizer, config, sft_config_from(config, tmp_path / "a", 64, overrides), rows
    )
    assert type(ours).__name__ == "AnswerOnlySFTTrainer"
    ours_history = history(ours)

    import torch
    from transformers import AutoModelForCausalLM

    from llm_assets.training.sft import frozen_base_in_bf16

    dtype = torch.bfloat16 if frozen_base_in_bf16(config) else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype)
    theirs = SFTTrainer(
        model=model,
        args=sft_config_from(config, tmp_path / "b", 64, overrides),
        train_dataset=rows,
        processing_class=tokenizer,
        peft_config=peft_config_from(config, model),
    )
    theirs_history = history(theirs)
    assert len(ours_history) == len(theirs_history) == 3
    for a, b in zip(ours_history, theirs_history, strict=True):
        assert a["num_tokens"] == b["num_tokens"]
        for key in ("loss", "mean_token_accuracy", "entropy"):
            assert a[key] == pytest.approx(b[key], rel=TOLERANCE[cpu_bf16], abs=1e-5), (key, a, b)
    # The validation loss, scored on answer positions too, is trl's.
    ours_eval, theirs_eval = ours.evaluate(rows), theirs.evaluate(rows)
    for key in ("eval_loss", "eval_mean_token_accuracy", "eval_entropy"):
        assert ours_eval[key] == pytest.approx(theirs_eval[key], rel=TOLERANCE[cpu_bf16]), key


def test_prompt_learning_keeps_trls_loss(tmp_path: Path) -> None:
    """Virtual tokens are added by peft's forward, which the answer-only loss steps around."""
    from datasets import Dataset

    from llm_assets.datasets.chat_template import load_chat_tokenizer, to_messages
    from llm_assets.training.sft import build_sft_trainer, sft_config_from

    folder = save_tiny_llama(tmp_path / "tiny")
    rows = Dataset.from_list([{"messages": to_messages("Where?", "Here.")}] * 4)
    config = TrainingConfig(method="prompt_tuning")
    trainer = build_sft_trainer(
        str(folder),
        load_chat_tokenizer(str(folder)),
        config,
        sft_config_from(config, tmp_path / "out", 64, {"eval_strategy": "no"}),
        rows,
    )
    assert type(trainer).__name__ == "SFTTrainer"
