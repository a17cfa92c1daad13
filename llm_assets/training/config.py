"""The `model:` and `training:` sections of a profile: the base model, and how it is
fine-tuned and launched."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from llm_assets.config_base import Allocator, StrictModel


class TinyModelConfig(StrictModel):
    """The embedded default base model: a small Llama built and pre-trained locally."""

    vocab_size: int = Field(2048, ge=300)
    hidden_size: int = Field(128, ge=32)
    intermediate_size: int = Field(256, ge=32)
    num_hidden_layers: int = Field(2, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    num_key_value_heads: int = Field(2, ge=1)
    max_position_embeddings: int = Field(1024, ge=64)
    pretrain_steps: int = Field(150, ge=0)
    pretrain_batch_size: int = Field(16, ge=1)
    pretrain_block_size: int = Field(128, ge=16)
    pretrain_learning_rate: float = Field(3e-3, gt=0)


class ModelConfig(StrictModel):
    kind: Literal["tiny", "pretrained", "gguf"] = Field(
        "tiny",
        description="tiny: build locally; pretrained: from_pretrained(id_or_path); gguf: a "
        "llama.cpp GGUF file, dequantized to fp32 and saved as a model folder",
    )
    id_or_path: str = Field(
        "llm-assets/tiny-llama",
        description="pretrained: hub id or local folder; gguf: a .gguf file (absolute or "
        "relative to the profile) or pypi:<distribution>/<file inside it>",
    )
    revision: str | None = None
    license: str = "apache-2.0"
    allowed_licenses: list[str] = Field(
        default_factory=lambda: ["apache-2.0", "mit", "llama3", "llama3.1", "gemma"]
    )
    tiny: TinyModelConfig = Field(default_factory=TinyModelConfig)

    @model_validator(mode="after")
    def _license_is_allowed(self) -> ModelConfig:
        if self.license not in self.allowed_licenses:
            raise ValueError(
                f"license '{self.license}' of '{self.id_or_path}' is not in allowed_licenses "
                f"{self.allowed_licenses}; add it only if your use case permits it"
            )
        return self


TrainingMethod = Literal["qlora", "lora", "full", "prompt_tuning", "p_tuning"]
# Methods that learn virtual prompt tokens, added in peft's own forward: nothing to merge
# into the weights, and no LoRA adapter to serve.
PROMPT_LEARNING_METHODS = ("prompt_tuning", "p_tuning")


class TrainingConfig(StrictModel):
    """How the base model is fine-tuned (trl SFTTrainer), and how the training process is
    launched (`accelerate launch`, through Dagster Pipes). Compute is bf16 on GPU; on CPU fp32,
    or bf16 autocast as `cpu_bf16` says.

    The fields are the small subset of trl's `SFTConfig` and peft's configs that most runs set,
    validated and documented here; `llm_assets.training.sft` maps them onto the library classes
    (the tables below say which field sets which argument). Every other argument of those
    classes passes through `sft_overrides` / `peft_overrides` as written, so a new trl or peft
    option needs no change here. Their names are checked against the library class when
    training starts (importing trl to check them on every profile load would slow the code
    location down), and an override of an argument a field or the pipeline sets is refused
    on load: each setting has one place in a profile.
    """

    # Fields that change how training runs, not what it learns: left out of the folder key of
    # the checkpoints, so a run resumed on another launch set-up continues the same training.
    # Recomputing activations changes a step's memory and time, not its arithmetic (a test
    # trains each way and compares the weights): a run that ran out of memory resumes with
    # more recomputation, and the adapter it made is not stale for it.
    LAUNCH_FIELDS: ClassVar[tuple[str, ...]] = (
        "accelerate_config",
        "num_processes",
        "system_metrics_interval_seconds",
        "allocator",
        "gradient_checkpointing",
        "gradient_checkpointing_every_n_layers",
        "gradient_checkpointing_kept_token_layers",
    )
    # trl SFTConfig and peft config arguments that a field or the pipeline sets, and what sets
    # them. SFTConfig arguments the pipeline merely defaults (save_total_limit, eval_strategy,
    # dataloader_num_workers, disable_tqdm) are not here: sft_overrides may change them.
    SFT_ARGUMENTS_SET_BY: ClassVar[dict[str, str]] = {
        "output_dir": "the pipeline (a checkpoint folder keyed by the inputs, for resuming)",
        "max_length": "datasets.max_length",
        "assistant_only_loss": "training.assistant_only_loss",
        "packing": "training.packing",
        "learning_rate": "training.learning_rate",
        "lr_scheduler_type": "training.lr_scheduler_type",
        "warmup_steps": "training.warmup_ratio",
        "num_train_epochs": "training.num_train_epochs",
        "max_steps": "training.max_steps",
        "per_device_train_batch_size": "training.per_device_train_batch_size",
        "per_device_eval_batch_size": "training.per_device_train_batch_size",
        "gradient_accumulation_steps": "training.gradient_accumulation_steps",
        "gradient_checkpointing": "training.gradient_checkpointing",
        "train_sampling_strategy": "training.group_by_length",
        "ddp_find_unused_parameters": "the pipeline (LoRA leaves most weights without "
        "gradients; DDP must not wait for them)",
        "save_strategy": "the pipeline (a checkpoint every training.save_steps, for resuming)",
        "save_steps": "training.save_steps",
        "logging_steps": "training.logging_steps",
        "seed": "training.seed",
        "data_seed": "training.seed",
        "bf16": "the machine and training.cpu_bf16 (bf16 on GPU; on CPU as cpu_bf16 says)",
        "use_cpu": "the machine (bf16 on GPU; on CPU as training.cpu_bf16 says)",
        "report_to": "the pipeline (metrics go to MLflow through Dagster Pipes)",
    }
    PEFT_ARGUMENTS_SET_BY: ClassVar[dict[str, str]] = {
        "r": "training.lora_r",
        "lora_alpha": "training.lora_alpha",
        "lora_dropout": "training.lora_dropout",
        "target_modules": "training.target_modules",
        "layers_to_transform": "training.lora_last_layers",
        "num_virtual_tokens": "training.num_virtual_tokens",
        "task_type": "the pipeline (a causal language model, CAUSAL_LM)",
    }

    method: TrainingMethod = Field(
        "qlora",
        description="qlora: LoRA on a 4-bit NF4 base (double quantization); lora: LoRA on a "
        "full-precision base; full: every weight; prompt_tuning: learned virtual-token "
        "embeddings (peft PromptTuningConfig); p_tuning: virtual tokens from a small prompt "
        "encoder (peft PromptEncoderConfig). Prompt methods cannot be merged into the base",
    )
    lora_r: int = Field(16, ge=1, description="LoRA rank (qlora, lora)")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator: scale = alpha / r")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: str | list[str] = Field(
        "all-linear",
        description="modules that get LoRA: all-linear (every linear layer but the output "
        "head), or a list of module names such as [q_proj, v_proj]",
    )
    lora_last_layers: int | None = Field(
        None,
        ge=1,
        description="LoRA only on the last N transformer layers (None: every layer): the "
        "backward pass then stops at the first adapted layer, so a CPU step costs far less",
    )
    num_virtual_tokens: int = Field(
        20, ge=1, le=512, description="virtual tokens learned (prompt_tuning, p_tuning)"
    )
    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate")
    lr_scheduler_type: str = Field(
        "cosine", description="transformers scheduler name: cosine, linear, constant, …"
    )
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="share of steps warming up")
    num_train_epochs: float = Field(2.0, gt=0, description="passes over the train split")
    max_steps: int = Field(-1, description="optimizer steps; overrides epochs when > 0")
    per_device_train_batch_size: int = Field(8, ge=1, description="rows per device per step")
    gradient_accumulation_steps: int = Field(
        1, ge=1, description="micro-batches summed into one optimizer step"
    )
    save_steps: int = Field(25, ge=1, description="checkpoint interval, for resuming")
    assistant_only_loss: bool = Field(True, description="loss on assistant turns only")
    packing: bool = Field(
        False,
        description="pack several conversations into each row (trl best-fit packing, without "
        "padding): fewer wasted tokens on GPU; rows stay whole, never cut",
    )
    group_by_length: bool = Field(
        False,
        description="batch rows of similar length together (transformers' LengthGroupedSampler): "
        "less padding computed, which on CPU is most of a step's waste",
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass: less memory, ~30% slower"
    )
    gradient_checkpointing_every_n_layers: int = Field(
        1,
        ge=1,
        description="with gradient_checkpointing, recompute only every N-th transformer layer "
        "(transformers' every_n_layers); the others keep their activations: 1 recomputes all, "
        "2 half of them, for about half the memory saving at about half the recomputation",
    )
    gradient_checkpointing_kept_token_layers: int | None = Field(
        None,
        ge=1,
        description="with gradient_checkpointing, a budget for the activations kept, in "
        "token-layers (a micro-batch's padded tokens x the layers that keep theirs): each "
        "micro-batch keeps as many layers as fit, spread through the stack, and recomputes the "
        "others, so short micro-batches recompute little and the longest most, and the peak "
        "follows the budget, not the longest batch. None: every_n_layers decides",
    )
    cpu_bf16: Literal["off", "auto", "on"] = Field(
        "off",
        description="on CPU, compute in bf16 autocast (the weights and optimizer stay fp32): "
        "auto where the CPU multiplies bf16 natively (AMX or AVX512-BF16; elsewhere bf16 is "
        "emulated and slower than fp32), on always, off never. GPUs always use bf16",
    )
    allocator: Allocator = Field(
        "auto",
        description="malloc of the training process: tcmalloc or jemalloc (an error where not "
        "installed), system (glibc's), or auto (tcmalloc where installed, else jemalloc, else "
        "glibc's). glibc's lets a CPU step's peak memory creep up; none changes a result "
        "(Debian/Ubuntu packages libtcmalloc-minimal4, libjemalloc2)",
    )
    logging_steps: int = Field(5, ge=1, description="steps between logged metrics")
    seed: int = Field(42, description="seed of weights init, data order and dropout")
    sft_overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="further trl SFTConfig arguments, e.g. {weight_decay: 0.01, max_grad_norm: "
        "0.5, eval_strategy: steps, eval_steps: 50}; names are checked against SFTConfig when "
        "training starts",
    )
    peft_overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="further arguments of the method's peft config (LoraConfig for qlora and "
        "lora, PromptTuningConfig, PromptEncoderConfig), e.g. {use_rslora: true, use_dora: "
        "true}; names are checked against that class when training starts",
    )
    accelerate_config: str = Field(
        "auto",
        description="accelerate config the training process is launched with: auto (cpu "
        "without CUDA, single_gpu with it), cpu, single_gpu, ddp, fsdp_qlora (files in "
        "conf/accelerate/), or a path to your own YAML (absolute or relative to the profile)",
    )
    num_processes: int | None = Field(
        None, ge=1, description="processes (GPUs) accelerate starts; None: the config file's"
    )
    system_metrics_interval_seconds: float = Field(
        10.0, gt=0, description="how often CPU, memory, disk and GPU use are sampled to MLflow"
    )

    @model_validator(mode="after")
    def _overrides_leave_fields_alone(self) -> TrainingConfig:
        for key, set_by in (
            ("sft_overrides", self.SFT_ARGUMENTS_SET_BY),
            ("peft_overrides", self.PEFT_ARGUMENTS_SET_BY),
        ):
            for name in getattr(self, key):
                source = set_by.get(name)
                if source is None:
                    continue
                if source.startswith("the "):
                    raise ValueError(f"{key}.{name} is set by {source}; remove it")
                raise ValueError(f"{key}.{name} is set by {source}; set that instead")
        recomputed = self.sft_overrides.get("gradient_checkpointing_kwargs")
        if isinstance(recomputed, dict) and "every_n_layers" in recomputed:
            raise ValueError(
                "sft_overrides.gradient_checkpointing_kwargs.every_n_layers is set by "
                "training.gradient_checkpointing_every_n_layers; set that instead"
            )
        every_n = self.gradient_checkpointing_every_n_layers > 1
        budget = self.gradient_checkpointing_kept_token_layers is not None
        for name, chosen in (
            ("gradient_checkpointing_every_n_layers", every_n),
            ("gradient_checkpointing_kept_token_layers", budget),
        ):
            if chosen and not self.gradient_checkpointing:
                raise ValueError(
                    f"training.{name} recomputes layers only with "
                    "training.gradient_checkpointing: true; turn that on or remove it"
                )
        if every_n and budget:
            raise ValueError(
                "training.gradient_checkpointing_every_n_layers and "
                "gradient_checkpointing_kept_token_layers both choose the layers recomputed; "
                "keep one"
            )
        if self.method == "full" and self.peft_overrides:
            raise ValueError(
                "peft_overrides: method full trains every weight, with no peft config; remove them"
            )
        return self


PreferenceMethod = Literal["off", "kto", "dpo"]


class PreferenceConfig(StrictModel):
    """The `preference:` section: tuning the fine-tuned (SFT) model on what users said, after
    SFT, in the same quarterly run."""

    method: PreferenceMethod = Field(
        "kto",
        description="kto: trl KTOTrainer on liked and disliked answers (unpaired rows); dpo: "
        "DPOTrainer on pairs (a correction or a better-rated answer over the served one); off: "
        "the SFT adapter is the challenger",
    )
    min_rows: int = Field(
        32,
        ge=1,
        description="usable rows (KTO rows or DPO pairs, every quarter so far) below which the "
        "step is skipped, saying why, and the SFT adapter stays the challenger",
    )
    beta: float = Field(0.1, gt=0, description="how far the tuned model may move from the SFT one")
    learning_rate: float = Field(5e-5, gt=0)
    max_steps: int = Field(40, description="-1: num_train_epochs passes instead")
    num_train_epochs: float = Field(1.0, gt=0)
    per_device_train_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(2, ge=1)
    save_steps: int = Field(10, ge=1, description="a checkpoint every N steps (resume)")
    logging_steps: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _kto_needs_a_batch_of_two(self) -> PreferenceConfig:
        # KTO estimates its reference point from mismatched pairs within a batch.
        if self.method == "kto" and self.per_device_train_batch_size < 2:
            raise ValueError("preference.method kto needs per_device_train_batch_size >= 2")
        return self
