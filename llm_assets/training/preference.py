"""Preference tuning on what users said: trl's `KTOTrainer` on liked and disliked answers
(unpaired), or `DPOTrainer` on pairs (a correction or a better-rated answer over the served one),
on top of the fine-tuned (SFT) model.

The SFT adapter is first merged into its base, and a new LoRA adapter is trained on the merged
model. With peft, trl's reference model is the same weights with the adapter switched off, so
the reference is exactly the SFT model (what the KL term keeps the policy close to) without a
second copy in memory. The result reads like any adapter: its base is the merged SFT folder, so
evaluation, serving, merging and export load it as they load the SFT adapter.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from llm_assets.training.sft import (
    AdapterTrainingResult,
    MetricsReporter,
    _device_map,
    _metrics_callback,
    checkpointing_arguments,
    latest_checkpoint,
    on_gpu,
    peak_memory_mib,
    peft_config_from,
    quantization_config_from,
    recompute_as_configured,
)

if TYPE_CHECKING:
    from llm_assets.settings import PreferenceConfig, TrainingConfig


PreferenceMethod = Literal["kto", "dpo"]
# What each trainer reads of preference_dataset's split of the same name.
TRAINER_COLUMNS: dict[str, list[str]] = {
    "kto": ["prompt", "completion", "label"],
    "dpo": ["prompt", "chosen", "rejected"],
}


class CannotPreferenceTune(ValueError):
    """The SFT model cannot be the start of preference tuning (a prompt-learning method)."""


def balanced_kto_weights(labels: Sequence[bool]) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight) that give both kinds of answer the same total
    weight, as the KTO paper advises for unbalanced data: the rarer kind is weighted up."""
    liked = sum(bool(label) for label in labels)
    disliked = len(labels) - liked
    if not liked or not disliked:
        return 1.0, 1.0
    if liked >= disliked:
        return 1.0, liked / disliked
    return disliked / liked, 1.0


def preference_config_from(
    method: PreferenceMethod,
    preference: PreferenceConfig,
    training: TrainingConfig,
    output_dir: Path,
    max_length: int,
    labels: Sequence[bool] = (),
) -> Any:
    """trl's `KTOConfig` or `DPOConfig`: the preference section's step settings, the
    training section's precision, checkpointing and seed (so a resumed run behaves the same)."""
    gpu = on_gpu()
    arguments: dict[str, Any] = dict(
        output_dir=str(output_dir),
        max_length=max_length,
        beta=preference.beta,
        learning_rate=preference.learning_rate,
        num_train_epochs=preference.num_train_epochs,
        max_steps=preference.max_steps,
        per_device_train_batch_size=preference.per_device_train_batch_size,
        gradient_accumulation_steps=preference.gradient_accumulation_steps,
        gradient_checkpointing=training.gradient_checkpointing,
        **checkpointing_arguments(training),
        lr_scheduler_type="cosine",
        warmup_steps=0.1,
        save_strategy="steps",
        save_steps=preference.save_steps,
        save_total_limit=2,
        logging_steps=preference.logging_steps,
        seed=training.seed,
        data_seed=training.seed,
        bf16=gpu,
        use_cpu=not gpu,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
    )
    if method == "kto":
        from trl import KTOConfig

        desirable, undesirable = balanced_kto_weights(labels)
        return KTOConfig(**arguments, desirable_weight=desirable, undesirable_weight=undesirable)
    from trl import DPOConfig

    return DPOConfig(**arguments, loss_type=["sigmoid"])


def train_preference_adapter(
    sft_model_path: str,
    rows: Any,
    method: PreferenceMethod,
    preference: PreferenceConfig,
    training: TrainingConfig,
    max_length: int,
    work_dir: Path,
    report: MetricsReporter,
    chat_template: str | None = None,
) -> AdapterTrainingResult:
    """Train a preference adapter on `rows` (conversational `prompt`/`completion`/`label` for
    KTO, `prompt`/`chosen`/`rejected` for DPO) over the merged SFT model in `sft_model_path`,
    loaded as `training.method` loads a base (4-bit for QLoRA). The adapter and tokenizer end up
    in `work_dir/final`; a re-run resumes from `work_dir/checkpoints`."""
    import torch
    from transformers import AutoModelForCausalLM

    from llm_assets.datasets.chat_template import load_chat_tokenizer

    if training.method not in ("qlora", "lora", "full"):
        raise CannotPreferenceTune(
            f"training.method {training.method!r} adds virtual prompt tokens that cannot be "
            "merged into the model, so preference tuning has no SFT model to start from; use "
            "training.method: qlora | lora | full, or preference.method: off"
        )
    started = time.perf_counter()
    tokenizer = load_chat_tokenizer(sft_model_path, chat_template)
    model = AutoModelForCausalLM.from_pretrained(
        sft_model_path,
        quantization_config=quantization_config_from(training),
        dtype=torch.bfloat16 if on_gpu() else torch.float32,
        device_map=_device_map(),
    )
    checkpoints = work_dir / "checkpoints"
    labels = list(rows["label"]) if method == "kto" else []
    args = preference_config_from(method, preference, training, checkpoints, max_length, labels)
    trainer_class = _trainer_class(method)
    trainer = trainer_class(
        model=model,
        ref_model=None,  # with peft: the model with the adapter off, i.e. the SFT model
        args=args,
        train_dataset=rows,
        processing_class=tokenizer,
        peft_config=peft_config_from(training, model),
        callbacks=[_metrics_callback(report)],
    )
    recompute_as_configured(trainer.model, training)
    resume_from = latest_checkpoint(checkpoints)
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final_dir = work_dir / "final"
    trainer.save_model(str(final_dir))
    if trainer.args.should_save:
        tokenizer.save_pretrained(str(final_dir))
    parameters = list(trainer.model.parameters())
    return AdapterTrainingResult(
        output_dir=final_dir,
        method=training.method,
        global_step=int(output.global_step),
        train_loss=float(output.training_loss),
        resumed_from=resume_from.name if resume_from else None,
        rows_dropped_too_long=0,
        trainable_parameters=int(sum(p.numel() for p in parameters if p.requires_grad)),
        total_parameters=int(sum(p.numel() for p in parameters)),
        seconds=time.perf_counter() - started,
        log_history=[dict(entry) for entry in trainer.state.log_history],
        peak_memory_mib=peak_memory_mib(),
        trained_model=trainer.model,
    )


def _trainer_class(method: PreferenceMethod) -> Any:
    if method == "kto":
        from trl import KTOTrainer

        return KTOTrainer
    from trl import DPOTrainer

    return DPOTrainer
