"""Supervised fine-tuning with trl's SFTTrainer: QLoRA (NF4 base + LoRA), LoRA, full, or a
peft prompt method (prompt tuning, p-tuning).

The flat `TrainingConfig` maps onto `SFTConfig`, a peft config and `BitsAndBytesConfig` in three
small functions below, so what a profile sets is visible in one place; `training.sft_overrides`
and `training.peft_overrides` carry any other argument of those classes, checked against the
class's own fields here, where trl and peft are imported anyway. Checkpoints are written
every `save_steps` into a folder keyed by the inputs, and a re-run with the same inputs resumes
from the last one instead of starting over. `llm_assets.training.fine_tune` runs this in a
process of its own, launched by `accelerate launch`; under torchrun-style launches each process
trains on its own GPU (`LOCAL_RANK`), and under FSDP the 4-bit weights are stored as bf16 so
they can be sharded.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_assets.settings import TrainingConfig
from llm_assets.training.config import PROMPT_LEARNING_METHODS

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
    peak_memory_mib: float = 0.0
    # The trained model in memory (a PeftModel, or the full model), for logging it to MLflow
    # without reading it back; None where it is sharded across processes (FSDP).
    trained_model: Any = field(default=None, repr=False, compare=False)


def on_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def cpu_multiplies_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (AMX tiles or AVX512-BF16), which make
    bf16 autocast faster than fp32 instead of slower (measured: 1.44x tokens/s on SmolLM2)."""
    import torch

    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, check, lambda: False)()) for check in checks)


def cpu_bf16_chosen(setting: str) -> bool:
    """A `cpu_bf16` setting (training's or evaluation's) on this CPU: "on" always, "auto" where
    it multiplies bf16 natively, "off" never."""
    return setting == "on" or (setting == "auto" and cpu_multiplies_bf16())


def bf16_compute(config: TrainingConfig, gpu: bool) -> bool:
    """Whether training computes in bf16: always on GPU, on CPU as `training.cpu_bf16` says."""
    return gpu or cpu_bf16_chosen(config.cpu_bf16)


def frozen_base_in_bf16(config: TrainingConfig) -> bool:
    """Whether the base weights are loaded in bf16: on GPU, and on CPU for LoRA in bf16 autocast.
    Frozen, they need no fp32 master copy (peft keeps the adapter's weights in fp32), and
    autocast would otherwise cast each of them to bf16 again in every forward and recompute."""
    gpu = on_gpu()
    return gpu or (config.method == "lora" and bf16_compute(config, gpu))


def uses_fsdp() -> bool:
    """Whether `accelerate launch` started this process under FSDP (it says so in the env)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")


def peak_memory_mib() -> float:
    """Peak memory of this training process so far: CUDA allocations on GPU, the process's
    peak resident set on CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def quantization_config_from(config: TrainingConfig) -> Any | None:
    """NF4 with double quantization for QLoRA; compute in bf16 on GPU, fp32 on CPU. Under FSDP
    the packed 4-bit weights are stored as bf16, the dtype FSDP shards."""
    if config.method != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if on_gpu() else torch.float32
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
        bnb_4bit_quant_storage=torch.bfloat16 if uses_fsdp() else torch.uint8,
    )


# The peft config class of each method that trains an adapter.
PEFT_CONFIG_CLASSES = {
    "qlora": "LoraConfig",
    "lora": "LoraConfig",
    "prompt_tuning": "PromptTuningConfig",
    "p_tuning": "PromptEncoderConfig",
}
# SFTConfig arguments the pipeline picks where trl's defaults do not suit it, and which
# `training.sft_overrides` may change (those a field sets: TrainingConfig.SFT_ARGUMENTS_SET_BY).
SFT_DEFAULTS: dict[str, Any] = {
    "save_total_limit": 2,
    "eval_strategy": "epoch",
    "disable_tqdm": True,
    "dataloader_num_workers": 0,
}


def peft_arguments(config: TrainingConfig, model: Any = None) -> dict[str, Any] | None:
    """The peft config arguments of `config.method` (None for full) as plain values. `model`
    (the base) places `lora_last_layers`."""
    if config.method == "full":
        return None
    if config.method in PROMPT_LEARNING_METHODS:
        return {"task_type": "CAUSAL_LM", "num_virtual_tokens": config.num_virtual_tokens}
    layers, targets = None, config.target_modules
    if config.lora_last_layers is not None:
        if model is None:
            raise ValueError("training.lora_last_layers needs the base model to place the layers")
        count = int(model.config.num_hidden_layers)
        layers = list(range(max(count - config.lora_last_layers, 0), count))
        # peft places layers only for named modules, not for "all-linear".
        targets = linear_module_names(model) if targets == "all-linear" else targets
    return {
        "r": config.lora_r,
        "lora_alpha": config.lora_alpha,
        "lora_dropout": config.lora_dropout,
        "target_modules": targets,
        "layers_to_transform": layers,
        "task_type": "CAUSAL_LM",
    }


def peft_config_from(config: TrainingConfig, model: Any = None) -> Any | None:
    """LoRA for qlora and lora, a prompt-learning config for the prompt methods, None for full;
    `training.peft_overrides` on top. `model` (the base) places `lora_last_layers`."""
    arguments = peft_arguments(config, model)
    if arguments is None:
        return None
    import peft

    config_class = getattr(peft, PEFT_CONFIG_CLASSES[config.method])
    overrides = library_overrides(config_class, config.peft_overrides, "training.peft_overrides")
    return config_class(**{**overrides, **arguments})


def linear_module_names(model: Any) -> list[str]:
    """The names (last component) of the linear layers inside the transformer blocks: what
    peft's "all-linear" adapts, the output head left out."""
    import torch

    head = model.get_output_embeddings()
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and module is not head
        }
    )


def sft_arguments(
    config: TrainingConfig, output_dir: Path, max_length: int, gpu: bool
) -> dict[str, Any]:
    """The SFTConfig arguments the profile and the machine set, as plain values."""
    return dict(
        output_dir=str(output_dir),
        max_length=max_length,
        assistant_only_loss=config.assistant_only_loss,
        packing=config.packing,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        gradient_checkpointing=config.gradient_checkpointing,
        **checkpointing_arguments(config),
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        # LoRA leaves most weights without gradients; DDP must not wait for them.
        ddp_find_unused_parameters=False,
        save_strategy="steps",
        save_steps=config.save_steps,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,
        bf16=bf16_compute(config, gpu),
        use_cpu=not gpu,
        report_to="none",
    )


def checkpointing_arguments(config: TrainingConfig) -> dict[str, Any]:
    """The trainer arguments that make gradient checkpointing recompute only every N-th layer
    (`training.gradient_checkpointing_every_n_layers`); none when every layer is."""
    if not config.gradient_checkpointing or config.gradient_checkpointing_every_n_layers == 1:
        return {}
    return {
        "gradient_checkpointing_kwargs": {
            "every_n_layers": config.gradient_checkpointing_every_n_layers
        }
    }


def sft_config_from(
    config: TrainingConfig,
    output_dir: Path,
    max_length: int,
    overrides: dict[str, Any] | None = None,
) -> Any:
    """trl's SFTConfig: SFT_DEFAULTS, then `training.sft_overrides`, then what the profile
    sets. `overrides`: SFTConfig arguments set on top of all of them (the benchmark turns
    evaluation and checkpoints off)."""
    from trl import SFTConfig

    chosen = library_overrides(SFTConfig, config.sft_overrides, "training.sft_overrides")
    mapped = sft_arguments(config, output_dir, max_length, on_gpu())
    arguments = {**SFT_DEFAULTS, **chosen, **mapped}
    # The profile's every_n_layers joins what sft_overrides passes to torch's checkpoint
    # (use_reentrant, ...) instead of replacing it.
    keywords = "gradient_checkpointing_kwargs"
    if keywords in chosen and keywords in mapped:
        arguments[keywords] = {**chosen[keywords], **mapped[keywords]}
    return SFTConfig(**{**arguments, **(overrides or {})})


def library_overrides(
    config_class: type, overrides: Mapping[str, Any], profile_key: str
) -> dict[str, Any]:
    """`overrides` (from the profile key `profile_key`) as arguments of `config_class`, a
    dataclass as trl's and peft's configs are: each name must be one of its fields, and each
    value is validated (and converted: YAML reads 1e-4 as a string) against the field's type.
    A ValueError names the key and the closest valid names."""
    import dataclasses
    import difflib
    import typing

    from pydantic import TypeAdapter, ValidationError

    names = [argument.name for argument in dataclasses.fields(config_class) if argument.init]
    types = typing.get_type_hints(config_class)  # peft writes its annotations as strings
    library = f"{config_class.__module__.split('.')[0]}'s {config_class.__name__}"
    checked: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
            hint = f"closest: {', '.join(close)}" if close else "see its documentation"
            raise ValueError(f"{profile_key}.{name} is not an argument of {library}; {hint}")
        try:
            checked[name] = TypeAdapter(types[name]).validate_python(value)
        except ValidationError as error:
            expected = getattr(types[name], "__name__", types[name])
            raise ValueError(
                f"{profile_key}.{name}: {value!r} does not fit {library}.{name} "
                f"({expected}): {error.errors()[0]['msg']}"
            ) from None
    return checked


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
        """Adds tokens/s (over the time spent in training steps, so evaluation and checkpoint
        saving do not count) and peak memory to each logged step, in the trainer's own history
        too, so a resumed run keeps them."""

        def __init__(self) -> None:
            self.step_started = 0.0
            self.step_seconds = 0.0
            # trl's `num_tokens` counts from 0 in each process, a resumed one included.
            self.last_tokens = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            self.step_started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            self.step_seconds += time.perf_counter() - self.step_started

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            numeric = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float)}
            added = {"peak_memory_mib": peak_memory_mib()}
            tokens = numeric.get("num_tokens")
            if tokens is not None and self.step_seconds > 0:
                added["tokens_per_second"] = (tokens - self.last_tokens) / self.step_seconds
                self.last_tokens, self.step_seconds = tokens, 0.0
            numeric.update(added)
            if state.log_history and state.log_history[-1].get("step") == state.global_step:
                state.log_history[-1].update(added)
            report(numeric, state.global_step)

    return ReportMetrics()


def _device_map() -> dict[str, Any] | None:
    """Where the weights load: this process's GPU (`LOCAL_RANK` under multi-GPU launches), the
    CPU, or nowhere yet under FSDP, which places the shards itself."""
    if uses_fsdp():
        return None
    if on_gpu():
        return {"": int(os.environ.get("LOCAL_RANK", "0"))}
    return {"": "cpu"}


def build_sft_trainer(
    base_model_path: str,
    tokenizer: Any,
    config: TrainingConfig,
    args: Any,
    train_dataset: Any,
    eval_dataset: Any = None,
    callbacks: list[Any] | None = None,
    answer_only_loss: bool = True,
) -> Any:
    """The base loaded as `config.method` needs it (4-bit for QLoRA; bf16 on GPU, fp32 on CPU)
    and trl's SFTTrainer around it with the method's peft config: the training step that
    `train_adapter` runs and the benchmark measures. `answer_only_loss`: the loss of
    `answer_loss` (the same value, less memory and work); off, trl's own (the benchmark's
    peer)."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    from llm_assets.training.answer_loss import answer_only_sft_trainer

    model = AutoModelForCausalLM.from_pretrained(
        base_model_path,
        quantization_config=quantization_config_from(config),
        dtype=torch.bfloat16 if frozen_base_in_bf16(config) else torch.float32,
        device_map=_device_map(),
    )
    # Prompt-learning methods add virtual tokens in peft's own forward, which the answer-only
    # loss would step around; they keep trl's loss.
    answer_only = answer_only_loss and config.method not in PROMPT_LEARNING_METHODS
    trainer_class = answer_only_sft_trainer() if answer_only else SFTTrainer
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config_from(config, model),
        callbacks=callbacks,
    )
    recompute_as_configured(trainer.model, config)
    return trainer


def recompute_as_configured(model: Any, config: TrainingConfig) -> None:
    """With `training.gradient_checkpointing_kept_token_layers`, each training forward of
    `model` recomputes only the layers that budget cannot keep (`recompute_budget`)."""
    budget = config.gradient_checkpointing_kept_token_layers
    if config.gradient_checkpointing and budget is not None:
        from llm_assets.training.answer_loss import causal_backbone
        from llm_assets.training.recompute_budget import recompute_within_budget

        recompute_within_budget(causal_backbone(model), budget)


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
    `work_dir/checkpoints`. `report(metrics, step)` gets every logged step: the trainer's loss,
    learning rate and grad norm, plus tokens/s and peak memory (MiB)."""
    from llm_assets.datasets.chat_template import load_chat_tokenizer

    started = time.perf_counter()
    tokenizer = load_chat_tokenizer(base_model_path, chat_template)
    train_dataset, dropped_train = drop_rows_over_length(train_dataset, tokenizer, max_length)
    eval_dataset, dropped_eval = drop_rows_over_length(eval_dataset, tokenizer, max_length)
    checkpoints = work_dir / "checkpoints"
    trainer = build_sft_trainer(
        base_model_path,
        tokenizer,
        config,
        sft_config_from(config, checkpoints, max_length),
        train_dataset,
        eval_dataset,
        callbacks=[_metrics_callback(report)],
    )
    resume_from = latest_checkpoint(checkpoints)
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final_dir = work_dir / "final"
    if uses_fsdp():  # gather the shards into one adapter file, as peft's FSDP example does
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(final_dir))
    if trainer.args.should_save:  # the main process only, under multi-GPU launches
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
        peak_memory_mib=peak_memory_mib(),
        trained_model=None if uses_fsdp() else trainer.model,
    )
