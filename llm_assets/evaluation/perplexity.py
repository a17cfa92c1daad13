"""Perplexity of a causal LM on the answers of chat conversations, rendered with its own template.

Only the final assistant turn is scored: that is what fine-tuning teaches, and scoring the
prompt too would let a model look better by memorizing the template and the questions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llm_assets.datasets.chat_template import render_chat


@dataclass(frozen=True)
class PerplexityResult:
    perplexity: float
    mean_nll: float
    tokens: int
    rows: int


def answer_token_spans(
    tokenizer: Any, conversations: list[list[dict[str, str]]], max_length: int
) -> list[tuple[list[int], int]]:
    """(token ids of the whole conversation, index of the first answer token) per conversation."""
    spans = []
    for messages in conversations:
        prompt = render_chat(tokenizer, messages, for_generation=True)
        full = render_chat(tokenizer, messages)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        full_ids = tokenizer(full, add_special_tokens=False)["input_ids"][:max_length]
        spans.append((full_ids, min(len(prompt_ids), len(full_ids))))
    return spans


def perplexity(
    model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    max_length: int,
    batch_size: int = 16,
) -> PerplexityResult:
    """exp(mean negative log-likelihood per answer token)."""
    import torch

    spans = answer_token_spans(tokenizer, conversations, max_length)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total_nll, total_tokens = 0.0, 0
    model.eval()
    for start in range(0, len(spans), batch_size):
        batch = spans[start : start + batch_size]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        scored = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, (ids, answer_start) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention[row, : len(ids)] = 1
            scored[row, answer_start : len(ids)] = True
        with torch.no_grad():
            logits = model(
                input_ids=input_ids.to(device), attention_mask=attention.to(device)
            ).logits.float()
        log_probs = torch.log_softmax(logits[:, :-1], dim=-1)
        targets = input_ids[:, 1:].to(device)
        token_nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        mask = scored[:, 1:].to(device)
        total_nll += float(token_nll[mask].sum())
        total_tokens += int(mask.sum())
    if total_tokens == 0:
        raise ValueError("no answer tokens to score: the evaluation set is empty")
    mean_nll = total_nll / total_tokens
    return PerplexityResult(math.exp(mean_nll), mean_nll, total_tokens, len(spans))
