"""The trained adapter as an MLflow model (transformers flavor), registrable and loadable.

A peft adapter is logged with a reference to its base model's local folder (`base_model_path`):
the MLflow artifact holds the adapter, the tokenizer with its chat template, and an `MLmodel`
file; `mlflow.transformers.load_model(uri)` loads the base from that folder and applies the
adapter, and `mlflow.pyfunc.load_model(uri).predict([...])` generates text. A full fine-tune is
logged with its weights. Nothing is fetched from the Hugging Face Hub on either side.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# What loading the model back needs; pinned to the versions it was trained with.
RUNTIME_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "accelerate", "peft")
MODEL_NAME = "model"


def pinned_requirements() -> list[str]:
    """`package==version` for each runtime package installed here. Passing these explicitly
    also stops MLflow from guessing (it would pin torchvision, which is not installed)."""
    pins = []
    for package in RUNTIME_PACKAGES:
        try:
            pins.append(f"{package}=={version(package).split('+')[0]}")
        except PackageNotFoundError:
            continue
    return pins


def log_trained_model(
    model: Any, tokenizer: Any, base_model_path: str, metadata: dict[str, Any]
) -> str:
    """Log `model` (a PeftModel or a full model) to the active MLflow run; returns the model
    URI (`models:/m-…`), which `mlflow.register_model(uri, name)` accepts."""
    import mlflow
    from mlflow.transformers.peft import is_peft_model

    peft = is_peft_model(model)
    info = mlflow.transformers.log_model(
        transformers_model={"model": model, "tokenizer": tokenizer},
        name=MODEL_NAME,
        task="text-generation",
        base_model_path=str(Path(base_model_path).resolve()) if peft else None,
        pip_requirements=pinned_requirements(),
        metadata=metadata,
    )
    return str(info.model_uri)


def load_trained_model(base_model_path: str, final_dir: Path, method: str) -> Any:
    """The trained model read back from `final_dir`, for logging where it is not in memory
    whole (FSDP shards it across processes): the base in full precision plus the adapter."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    if method == "full":
        return AutoModelForCausalLM.from_pretrained(final_dir, dtype=dtype)
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(base_model_path, dtype=dtype)
    return PeftModel.from_pretrained(base, str(final_dir))
