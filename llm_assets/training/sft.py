"""Supervised fine-tuning with trl's SFTTrainer: QLoRA (NF4 base + LoRA), LoRA, or full.

The flat `TrainingConfig` maps onto `SFTConfig`, `LoraConfig` and `BitsAndBytesConfig` in three
small functions below, so what a profile sets is visible in one place. Checkpoints are written
every `save_steps` into a folder keyed by the inputs, and a re-run with the same inputs resumes
from the last one instead of starting over.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_assets.settings import TrainingConfig

MetricsReporter = Callable[[dict[str, float], int], None]
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class AdapterTrainingResult:
    output_dir: Path
    method: str
    global_step: int
    train_loss: float
    resumed_from: str | None
    rows_dropped_too_long: int
    trainable_parameters: int
    total_parameters: int
    seconds: float
    log_history: list[dict[str, float]] = field(default_factory=list)


def on_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def quantization_config_from(config: TrainingConfig) -> Any | None:
    """NF4 with double quantization for QLoRA; compute in bf16 on GPU, fp32 on CPU."""
    if config.method != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if on_gpu() else torch.float32,
    )


def lora_config_from(config: TrainingConfig) -> Any | None:
    if config.method == "full":
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )


def sft_config_from(config: TrainingConfig, output_dir: Path, max_length: int) -> Any:
    from trl import SFTConfig

    gpu = on_gpu()
    return SFTConfig(
        output_dir=str(output_dir),
        max_length=max_length,
        assistant_only_loss=config.assistant_only_loss,
        packing=False,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        gradient_checkpointing=config.gradient_checkpointing,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=config.logging_steps,
        eval_strategy="epoch",
        seed=config.seed,
        data_seed=config.seed,
        bf16=gpu,
        use_cpu=not gpu,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def latest_checkpoint(folder: Path) -> Path | None:
    """The highest-numbered complete `checkpoint-N` in `folder`, if any."""
    if not folder.is_dir():
        return None
    complete = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := _CHECKPOINT.match(path.name)) and (path / "trainer_state.json").is_file()
    ]
    return max(complete)[1] if complete else None


def drop_rows_over_length(dataset: Any, tokenizer: Any, max_length: int) -> tuple[Any, int]:
    """Rows whose rendered conversation exceeds `max_length` tokens are removed, never cut: a
    truncated answer teaches the model to stop mid-sentence."""
    lengths = [
        len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False))
        for messages in dataset["messages"]
    ]
    keep = [index for index, length in enumerate(lengths) if length <= max_length]
    return dataset.select(keep), len(lengths) - len(keep)


def _metrics_callback(report: MetricsReporter) -> Any:
    from transformers import TrainerCallback

    class ReportMetrics(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.last_log_time = time.perf_counter()
            self.last_tokens = 0.0

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            numeric = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float)}
            tokens = numeric.get("num_tokens")
            if tokens is not None:
                elapsed = max(time.perf_counter() - self.last_log_time, 1e-9)
                numeric["tokens_per_second"] = (tokens - self.last_tokens) / elapsed
                self.last_tokens, self.last_log_time = tokens, time.perf_counter()
            report(numeric, state.global_step)

    return ReportMetrics()


def train_adapter(
    base_model_path: str,
    train_dataset: Any,
    eval_dataset: Any,
    config: TrainingConfig,
    max_length: int,
    work_dir: Path,
    report: MetricsReporter,
    chat_template: str | None = None,
) -> AdapterTrainingResult:
    """Fine-tune the base on `messages` rows rendered with `chat_template` (the one saved with
    the dataset; None: the base tokenizer's own, else ChatML); the adapter (or full model) and
    its tokenizer, with that template, end up in `work_dir/final`. Resumes from
    `work_dir/checkpoints`."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    from llm_assets.datasets.chat_template import load_chat_tokenizer

    started = time.perf_counter()
    tokenizer = load_chat_tokenizer(base_model_path, chat_template)
    train_dataset, dropped_train = drop_rows_over_length(train_dataset, tokenizer, max_length)
    eval_dataset, dropped_eval = drop_rows_over_length(eval_dataset, tokenizer, max_length)

    model = AutoModelForCausalLM.from_pretrained(
        base_model_path,
        quantization_config=quantization_config_from(config),
        dtype=torch.bfloat16 if on_gpu() else torch.float32,
        device_map={"": 0} if on_gpu() else {"": "cpu"},
    )
    checkpoints = work_dir / "checkpoints"
    trainer = SFTTrainer(
        model=model,
        args=sft_config_from(config, checkpoints, max_length),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=lora_config_from(config),
        callbacks=[_metrics_callback(report)],
    )
    resume_from = latest_checkpoint(checkpoints)
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final_dir = work_dir / "final"
    trainer.save_model(str(final_dir))
    tokenizer.save_pretrained(str(final_dir))
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    return AdapterTrainingResult(
        output_dir=final_dir,
        method=config.method,
        global_step=int(output.global_step),
        train_loss=float(output.training_loss),
        resumed_from=resume_from.name if resume_from else None,
        rows_dropped_too_long=dropped_train + dropped_eval,
        trainable_parameters=int(trainable),
        total_parameters=int(total),
        seconds=time.perf_counter() - started,
        log_history=[dict(entry) for entry in trainer.state.log_history],
    )
