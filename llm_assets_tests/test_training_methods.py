"""Each fine-tuning method on the tiny model on CPU, and the adapter as an MLflow model.

QLoRA, the default, is trained by the integration graph (through Pipes and accelerate); here
the other methods run `train_adapter` in-process on a tiny Llama, a few steps each.
"""

import math
from pathlib import Path
from typing import Any

import pytest

from llm_assets.datasets.chat_template import to_messages
from llm_assets.settings import TinyModelConfig, TrainingConfig
from llm_assets.training.sft import AdapterTrainingResult, peft_config_from, sft_config_from

pytestmark = pytest.mark.slow

HIDDEN = 64
FEW_STEPS = {
    "max_steps": 4,
    "save_steps": 100,
    "logging_steps": 1,
    "per_device_train_batch_size": 8,
    "learning_rate": 1e-2,
    "num_virtual_tokens": 6,
}


def build_tiny_training_inputs(folder: Path) -> tuple[Path, Path]:
    """A tiny Llama (no pre-training) and a DatasetDict of 32 train / 8 validation chats."""
    from datasets import Dataset, DatasetDict

    from llm_assets.training.base_model import build_tiny_base_model

    questions = [f"How do I fix sync error {n}?" for n in range(40)]
    answers = [f"Restart the client and retry step {n}." for n in range(40)]
    tiny = TinyModelConfig(
        vocab_size=400, hidden_size=HIDDEN, intermediate_size=128, pretrain_steps=0
    )
    build_tiny_base_model(
        [f"{q} {a}" for q, a in zip(questions, answers, strict=True)], tiny, folder / "base", 1
    )
    rows = [
        {
            "pair_id": f"pair-{n}",
            "instruction": question,
            "input": "",
            "output": answer,
            "messages": to_messages(question, answer),
        }
        for n, (question, answer) in enumerate(zip(questions, answers, strict=True))
    ]
    DatasetDict(
        train=Dataset.from_list(rows[:32]), validation=Dataset.from_list(rows[32:])
    ).save_to_disk(str(folder / "data"))
    return folder / "base", folder / "data"


@pytest.fixture(scope="module")
def tiny_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_tiny_training_inputs(tmp_path_factory.mktemp("methods"))


def _train(method: str, inputs: tuple[Path, Path], work_dir: Path) -> tuple[Any, list[Any]]:
    from datasets import load_from_disk

    from llm_assets.training.sft import train_adapter

    base, data = inputs
    splits = load_from_disk(str(data))
    logged: list[tuple[int, dict[str, float]]] = []
    result = train_adapter(
        str(base),
        splits["train"],
        splits["validation"],
        TrainingConfig(method=method, **FEW_STEPS),  # type: ignore[arg-type]
        128,
        work_dir,
        lambda metrics, step: logged.append((step, metrics)),
    )
    return result, logged


def test_training_config_maps_onto_sft_and_peft_configs(tmp_path: Path) -> None:
    from peft import LoraConfig, PromptEncoderConfig, PromptTuningConfig

    config = TrainingConfig(packing=True, lora_r=4, gradient_checkpointing=True)
    sft = sft_config_from(config, tmp_path, 256)
    assert sft.packing and sft.gradient_checkpointing and sft.max_length == 256
    assert not sft.bf16 and sft.use_cpu  # fp32 on a machine without CUDA
    lora = peft_config_from(config)
    assert isinstance(lora, LoraConfig) and lora.r == 4
    prompt = peft_config_from(TrainingConfig(method="prompt_tuning", num_virtual_tokens=7))
    assert isinstance(prompt, PromptTuningConfig) and prompt.num_virtual_tokens == 7
    encoder = peft_config_from(TrainingConfig(method="p_tuning"))
    assert isinstance(encoder, PromptEncoderConfig)
    assert peft_config_from(TrainingConfig(method="full")) is None


def test_recomputing_fewer_layers_learns_the_same_weights(
    tiny_inputs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recomputing every 2nd layer's activations, or as many as a token-layer budget leaves,
    changes the memory and the time of a step, not what it learns; a user's own checkpoint
    keywords are kept beside every_n_layers."""
    import torch
    from datasets import load_from_disk
    from transformers.modeling_layers import GradientCheckpointingLayer

    from llm_assets.training.sft import train_adapter

    base, data = tiny_inputs
    splits = load_from_disk(str(data))
    sft = sft_config_from(
        TrainingConfig(
            gradient_checkpointing=True,
            gradient_checkpointing_every_n_layers=2,
            sft_overrides={"gradient_checkpointing_kwargs": {"use_reentrant": False}},
        ),
        tmp_path / "unused",
        128,
    )
    assert sft.gradient_checkpointing_kwargs == {"use_reentrant": False, "every_n_layers": 2}
    from llm_assets.training import recompute_budget

    # Which layers each training forward recomputed under the budget, recorded as each runs.
    recomputed_by_forward: list[tuple[bool, ...]] = []
    within_budget = recompute_budget.recompute_within_budget

    def recording(backbone: Any, budget: int) -> Any:
        layers = [m for m in backbone.modules() if isinstance(m, GradientCheckpointingLayer)]

        def record(module: Any, args: Any, kwargs: Any) -> None:
            if module.training and torch.is_grad_enabled():
                recomputed_by_forward.append(
                    tuple(layer.gradient_checkpointing for layer in layers)
                )

        handle = within_budget(backbone, budget)
        backbone.register_forward_pre_hook(record, with_kwargs=True)
        return handle

    monkeypatch.setattr(recompute_budget, "recompute_within_budget", recording)
    ways: dict[str, dict[str, Any]] = {
        "every layer": {},
        "every 2nd layer": {"gradient_checkpointing_every_n_layers": 2},
        # Micro-batches of 8 rows of 36 tokens: 400 token-layers keep the top one of the two.
        "a budget": {"gradient_checkpointing_kept_token_layers": 400},
    }
    trained = {}
    for way, setting in ways.items():
        config = TrainingConfig(
            method="lora", lora_dropout=0.0, gradient_checkpointing=True, **setting, **FEW_STEPS
        )
        result = train_adapter(
            str(base),
            splits["train"],
            splits["validation"],
            config,
            128,
            tmp_path / way.replace(" ", "-"),
            lambda m, s: None,
        )
        if way == "every 2nd layer":
            layers = [
                module
                for module in result.trained_model.modules()
                if isinstance(module, GradientCheckpointingLayer)
            ]
            recomputed = [bool(layer.gradient_checkpointing) for layer in layers]
            assert recomputed == [index % 2 == 0 for index in range(len(layers))]
        trained[way] = {
            name: parameter.detach().clone()
            for name, parameter in result.trained_model.named_parameters()
            if parameter.requires_grad
        }
    assert (True, False) in recomputed_by_forward, recomputed_by_forward
    reference = trained["every layer"]
    assert reference
    for way, weights in trained.items():
        assert weights.keys() == reference.keys(), way
        for name, tensor in weights.items():
            assert torch.equal(tensor, reference[name]), (way, name)


def test_a_token_layer_budget_recomputes_more_layers_for_longer_batches(
    tiny_inputs: tuple[Path, Path],
) -> None:
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.modeling_layers import GradientCheckpointingLayer

    from llm_assets.training.recompute_budget import recompute_within_budget

    model = AutoModelForCausalLM.from_pretrained(str(tiny_inputs[0]))
    model.gradient_checkpointing_enable()
    model.train()
    handle = recompute_within_budget(model.model, budget=100)
    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    assert len(layers) == 2
    seen: dict[int, list[bool]] = {}
    for tokens in (40, 60, 120):
        model(input_ids=torch.ones((2, tokens // 2), dtype=torch.long))
        seen[tokens] = [bool(layer.gradient_checkpointing) for layer in layers]
    handle.remove()
    # 100 token-layers: 40 tokens keep both layers, 60 keep one, 120 keep none.
    assert seen == {40: [False, False], 60: [True, False], 120: [True, True]}


def test_lora_on_the_last_layers_adapts_only_those(tiny_inputs: tuple[Path, Path]) -> None:
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_inputs[0]))
    layers = base.config.num_hidden_layers
    lora = peft_config_from(TrainingConfig(method="lora", lora_last_layers=1), base)
    assert lora.layers_to_transform == [layers - 1]
    # "all-linear" is spelled out: peft places layers only for named modules.
    assert sorted(lora.target_modules) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    named = peft_config_from(
        TrainingConfig(method="lora", lora_last_layers=99, target_modules=["q_proj"]), base
    )
    assert named.layers_to_transform == list(range(layers)) and named.target_modules == {"q_proj"}
    with pytest.raises(ValueError, match="needs the base model"):
        peft_config_from(TrainingConfig(method="lora", lora_last_layers=1))
    sft = sft_config_from(TrainingConfig(group_by_length=True), Path("unused"), 128)
    assert sft.train_sampling_strategy == "group_by_length"


def test_lora_on_the_last_layer_leaves_the_others_untouched(
    tiny_inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    from datasets import load_from_disk

    from llm_assets.training.sft import train_adapter

    base, data = tiny_inputs
    splits = load_from_disk(str(data))
    config = TrainingConfig(method="lora", lora_last_layers=1, group_by_length=True, **FEW_STEPS)
    result = train_adapter(
        str(base), splits["train"], splits["validation"], config, 128, tmp_path, lambda m, s: None
    )
    adapted = {
        name.split(".layers.")[1].split(".")[0]
        for name, parameter in result.trained_model.named_parameters()
        if parameter.requires_grad
    }
    assert adapted == {str(result.trained_model.config.num_hidden_layers - 1)}
    assert result.global_step == FEW_STEPS["max_steps"]


@pytest.mark.parametrize("method", ["lora", "full", "prompt_tuning", "p_tuning"])
def test_each_method_trains_the_tiny_model_with_its_metrics(
    method: str, tiny_inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    result, logged = _train(method, tiny_inputs, tmp_path)
    assert isinstance(result, AdapterTrainingResult) and result.global_step == 4
    steps = [metrics for _, metrics in logged if "loss" in metrics]
    assert len(steps) == 4 and all(math.isfinite(m["loss"]) for m in steps)
    for metrics in steps:
        assert {"learning_rate", "grad_norm", "tokens_per_second", "peak_memory_mib"} <= set(
            metrics
        )
        assert metrics["tokens_per_second"] > 0 and metrics["peak_memory_mib"] > 0
    # The history kept in checkpoints carries the added metrics too.
    assert all("tokens_per_second" in e for e in result.log_history if "loss" in e)

    base = load_file(str(tiny_inputs[0] / "model.safetensors"))
    model = result.trained_model
    if method == "full":
        assert result.trainable_parameters == result.total_parameters
        tuned = load_file(str(result.output_dir / "model.safetensors"))
        assert any(not torch.equal(tuned[k], base[k]) for k in base if k in tuned)
        return
    assert result.trainable_parameters < result.total_parameters / 2
    if method == "prompt_tuning":
        assert result.trainable_parameters == FEW_STEPS["num_virtual_tokens"] * HIDDEN
    # The base stayed frozen: every base weight in the trained model equals the file's.
    frozen = {
        name.replace(".base_layer", ""): tensor
        for name, tensor in model.get_base_model().state_dict().items()
        if "lora_" not in name
    }
    compared = [name for name in base if name in frozen]
    assert compared and all(torch.equal(frozen[name], base[name]) for name in compared)
    trained_names = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trained_names and not trained_names & {f"base_model.model.{n}" for n in base}

    # Loads back the way evaluation loads it, and answers.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    reloaded = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(tiny_inputs[0])), str(result.output_dir)
    )
    inputs = AutoTokenizer.from_pretrained(str(result.output_dir))("How do I", return_tensors="pt")
    assert torch.isfinite(reloaded(**inputs).logits).all()


def test_adapter_logs_as_a_registrable_mlflow_model_that_generates(
    tiny_inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    import mlflow
    from transformers import AutoTokenizer

    from llm_assets.training.mlflow_model import log_trained_model

    result, _ = _train("prompt_tuning", tiny_inputs, tmp_path / "work")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("adapters", artifact_location=(tmp_path / "a").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        uri = log_trained_model(
            result.trained_model,
            AutoTokenizer.from_pretrained(str(result.output_dir)),
            str(tiny_inputs[0]),
            metadata={"method": "prompt_tuning"},
        )
    assert uri.startswith("models:/m-")
    logged = mlflow.get_logged_model(uri.removeprefix("models:/"))
    assert logged.source_run_id == run.info.run_id
    version = mlflow.register_model(uri, "support-assistant")
    assert int(version.version) == 1

    pipeline = mlflow.transformers.load_model(f"models:/support-assistant/{version.version}")
    assert type(pipeline.model).__name__ == "PeftModelForCausalLM"
    assert (
        pipeline.tokenizer.chat_template
        == AutoTokenizer.from_pretrained(str(result.output_dir)).chat_template
    )
    [answer] = pipeline("How do I fix sync error 3?", max_new_tokens=5, do_sample=False)
    assert answer["generated_text"].startswith("How do I fix sync error 3?")
    assert len(answer["generated_text"]) > len("How do I fix sync error 3?")
