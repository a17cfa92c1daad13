"""Merging an adapter into its base: one standalone safetensors model with a model card.

The merged model is what every quantized export starts from and what a serving stack without
peft loads. It carries the adapter's tokenizer, so the chat template it answers with is the one
training used.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from llm_assets.contracts import Adapter

MERGEABLE_METHODS = ("qlora", "lora", "full")


class CannotMerge(ValueError):
    """The adapter's method has no weights to fold into the base."""


def merge_adapter(base_model_path: str, adapter_path: str, method: str, output_dir: Path) -> None:
    """The base in full precision plus the LoRA deltas (a full fine-tune is copied as it is),
    saved as safetensors with the adapter's tokenizer and chat template.

    The base is loaded unquantized even for QLoRA: merging into 4-bit weights would round the
    deltas away; the quantized exports quantize the merged result instead."""
    if method not in MERGEABLE_METHODS:
        raise CannotMerge(
            f"a '{method}' adapter ({adapter_path}) adds virtual prompt tokens, not weight "
            f"deltas, so it cannot be merged into its base; serve it with peft on "
            f"{base_model_path}, or train with training.method: qlora | lora | full to export"
        )
    if method == "full":
        shutil.copytree(adapter_path, output_dir, dirs_exist_ok=True)
        return
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_model_path, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter_path).merge_and_unload()
    merged.save_pretrained(output_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(adapter_path).save_pretrained(output_dir)


def model_card(adapter: Adapter, license: str, name: str) -> str:
    """A Hugging Face model card (README.md with YAML metadata) for the merged model: where it
    came from (base, adapter, MLflow run). Its exports are measured in quantized_export's own
    README, written after the merged model."""
    metadata = {
        "base_model": adapter.base_model_id,
        "license": license,
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["llm_assets", adapter.method, "merged"],
    }
    lines = [
        "---",
        yaml.safe_dump(metadata, sort_keys=False).strip(),
        "---",
        "",
        f"# {name}",
        "",
        f"The `{adapter.method}` adapter from MLflow run `{adapter.mlflow_run_id}` merged "
        f"into `{adapter.base_model_id}`, saved as safetensors.",
        "",
        f"- Adapter weights digest: `{adapter.weights_digest}`",
        "- Chat template: the one the adapter was trained with (saved with the tokenizer); "
        "render prompts with `tokenizer.apply_chat_template`, never by hand.",
        "",
    ]
    return "\n".join(lines)
