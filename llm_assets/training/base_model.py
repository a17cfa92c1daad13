"""The base model: a tiny Llama built and pre-trained on the corpus, or a real one loaded by id.

The embedded default is pre-training from scratch in miniature: a byte-level BPE tokenizer trained
on the cleaned corpus, a small Llama, and a short causal-LM run over the same text, so
fine-tuning starts from a model that knows the domain's words.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_assets.datasets.chat_template import CHATML_SPECIAL_TOKENS, DEFAULT_CHAT_TEMPLATE
from llm_assets.settings import ModelConfig, TinyModelConfig

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", *CHATML_SPECIAL_TOKENS]


class BaseModelUnavailable(RuntimeError):
    """The configured base model is not on this machine."""


@dataclass
class PretrainSummary:
    steps: int
    first_loss: float
    last_loss: float
    tokens_seen: int
    seconds: float


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer (never an unknown token) with ChatML special tokens and the
    default chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="<|im_end|>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=list(CHATML_SPECIAL_TOKENS),
    )
    fast.chat_template = DEFAULT_CHAT_TEMPLATE
    return fast


def build_tiny_model(tokenizer: Any, config: TinyModelConfig, seed: int) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    llama_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(llama_config)


def pretrain(
    model: Any, tokenizer: Any, texts: list[str], config: TinyModelConfig, seed: int
) -> PretrainSummary:
    """A short causal-LM run over the corpus, packed into fixed blocks."""
    import torch

    started = time.perf_counter()
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        ids.append(tokenizer.eos_token_id)
    block = config.pretrain_block_size
    usable = (len(ids) // block) * block
    if config.pretrain_steps == 0 or usable == 0:
        return PretrainSummary(0, math.nan, math.nan, 0, 0.0)
    blocks = torch.tensor(ids[:usable]).view(-1, block)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.pretrain_learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.pretrain_learning_rate, total_steps=config.pretrain_steps
    )
    model.train()
    losses = []
    for _ in range(config.pretrain_steps):
        batch = blocks[
            torch.randint(len(blocks), (config.pretrain_batch_size,), generator=generator)
        ]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(loss))
    model.eval()
    return PretrainSummary(
        steps=config.pretrain_steps,
        first_loss=losses[0],
        last_loss=sum(losses[-10:]) / len(losses[-10:]),
        tokens_seen=config.pretrain_steps * config.pretrain_batch_size * block,
        seconds=time.perf_counter() - started,
    )


def build_tiny_base_model(
    texts: list[str], config: TinyModelConfig, output_dir: Path, seed: int
) -> PretrainSummary:
    """Tokenizer, model and pre-training, saved as a Hugging Face model folder."""
    tokenizer = train_tokenizer(texts, config.vocab_size)
    model = build_tiny_model(tokenizer, config, seed)
    summary = pretrain(model, tokenizer, texts, config, seed)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return summary


def resolve_pretrained(config: ModelConfig) -> str:
    """A local folder holding `config.id_or_path`: the path itself, or its snapshot in the Hugging
    Face cache. Never downloads: this machine may be air-gapped."""
    candidate = Path(config.id_or_path).expanduser()
    if candidate.is_dir():
        if not (candidate / "config.json").is_file():
            raise BaseModelUnavailable(f"{candidate}: no config.json; is this a model folder?")
        return str(candidate.resolve())
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(config.id_or_path, revision=config.revision, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError) as error:
        raise BaseModelUnavailable(
            f"base model '{config.id_or_path}' (revision {config.revision or 'main'}) is not in "
            f"the local Hugging Face cache and this pipeline does not download at run time. "
            f"On a connected machine run `huggingface-cli download {config.id_or_path}` and copy "
            f"the cache folder (HF_HOME) here, or set model.id_or_path to a local model folder."
        ) from error


def weights_identity(model_dir: str) -> str:
    """What names these weights exactly: the commit of a Hugging Face cache snapshot (hashing
    14 GB on every run would be waste), else a digest of the folder's files."""
    from llm_assets.storage import folder_digest

    path = Path(model_dir)
    if path.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", path.name):
        return f"hf:{path.name}"
    return folder_digest(path)


def count_parameters(model_dir: str) -> int | None:
    """Parameters stored in the folder's safetensors files; None for other weight formats."""
    import json

    from safetensors import safe_open

    total = 0
    index = Path(model_dir) / "model.safetensors.index.json"
    files = (
        sorted(set(json.loads(index.read_text())["weight_map"].values()))
        if index.is_file()
        else ["model.safetensors"]
    )
    if not all((Path(model_dir) / name).is_file() for name in files):
        return None
    for name in files:
        with safe_open(str(Path(model_dir) / name), framework="pt") as weights:
            for key in weights.keys():
                total += math.prod(weights.get_slice(key).get_shape())
    return total
