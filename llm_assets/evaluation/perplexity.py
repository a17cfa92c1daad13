"""Perplexity of a causal LM on the answers of chat conversations, rendered with its own template.

Only the final assistant turn is scored: that is what fine-tuning teaches, and scoring the
prompt too would let a model look better by memorizing the template and the questions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llm_assets.datasets.chat_template import render_chat


@dataclass(frozen=True)
class PerplexityResult:
    perplexity: float
    mean_nll: float
    tokens: int
    rows: int
    # Per conversation, in order: the summed NLL of its answer tokens and their number, the
    # sufficient statistics a paired bootstrap resamples.
    row_nll: list[float] = field(default_factory=list)
    row_tokens: list[int] = field(default_factory=list)

    @property
    def row_stats(self) -> list[list[float]]:
        """[answer NLL, answer tokens] per conversation."""
        pairs = zip(self.row_nll, self.row_tokens, strict=True)
        return [[nll, float(tokens)] for nll, tokens in pairs]


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

    from llm_assets.evaluation.decoding import contiguous_head_input, left_padded

    spans = answer_token_spans(tokenizer, conversations, max_length)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    row_nll: list[float] = [0.0] * len(spans)
    row_tokens: list[int] = [0] * len(spans)
    # Conversations of similar length share a batch: less padding to compute.
    by_length = sorted(range(len(spans)), key=lambda index: len(spans[index][0]))
    model.eval()
    for start in range(0, len(spans), batch_size):
        rows = by_length[start : start + batch_size]
        batch = [spans[index] for index in rows]
        width = max(len(ids) for ids, _ in batch)
        # Left-padded, so every row's answer ends the row: only the last `kept` positions (the
        # longest answer, plus the prompt token that predicts its first token) need logits,
        # and the vocabulary projection of the prompts is never computed.
        kept = max(len(ids) - answer_start for ids, answer_start in batch) + 1
        input_ids, attention = left_padded([ids for ids, _ in batch], pad_id)
        scored = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, (ids, answer_start) in enumerate(batch):
            scored[row, width - len(ids) + answer_start :] = True
        # Positions count from each row's first real token, as if it were not padded; peft's
        # prompt methods place their virtual tokens themselves and take none.
        positions = {"position_ids": (attention.cumsum(dim=1) - 1).clamp(min=0).to(device)}
        active = getattr(model, "active_peft_config", None)
        with torch.no_grad(), contiguous_head_input(model):
            logits = model(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                logits_to_keep=kept,
                **({} if getattr(active, "is_prompt_learning", False) else positions),
            ).logits.float()
        log_probs = torch.log_softmax(logits[:, :-1], dim=-1)
        targets = input_ids[:, width - kept + 1 :].to(device)
        token_nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        mask = scored[:, width - kept + 1 :].to(device)
        for index, nll, tokens in zip(
            rows,
            torch.where(mask, token_nll, 0.0).sum(dim=1).tolist(),
            mask.sum(dim=1).tolist(),
            strict=True,
        ):
            row_nll[index], row_tokens[index] = nll, tokens
    return perplexity_from_rows(row_nll, row_tokens)


def perplexity_from_rows(row_nll: list[float], row_tokens: list[int]) -> PerplexityResult:
    """The result of conversations whose answers summed to `row_nll` over `row_tokens` tokens."""
    total_nll, total_tokens = float(sum(row_nll)), int(sum(row_tokens))
    if total_tokens == 0:
        raise ValueError("no answer tokens to score: the evaluation set is empty")
    mean_nll = total_nll / total_tokens
    return PerplexityResult(
        math.exp(mean_nll), mean_nll, total_tokens, len(row_nll), row_nll, row_tokens
    )


def pair_margins(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[Mapping[str, Any]],
    max_length: int,
    batch_size: int = 16,
) -> list[float]:
    """log p(chosen) - log p(rejected) of each preference pair (`prompt`, `chosen`, `rejected`:
    conversational, as `preference_dataset` holds them), each side summed over its answer
    tokens: how much more the model prefers the chosen answer, in nats."""

    def summed_nll(side: str) -> list[float]:
        conversations = [[*pair["prompt"], *pair[side]] for pair in pairs]
        return perplexity(model, tokenizer, conversations, max_length, batch_size).row_nll

    chosen, rejected = summed_nll("chosen"), summed_nll("rejected")
    return [r - c for c, r in zip(chosen, rejected, strict=True)]
