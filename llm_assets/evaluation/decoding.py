"""Decoding one left-padded batch of prompts on transformers, the loop evaluation answers with.

transformers' `generate` computes every row of a batch until its longest answer ends: on the
default run's golden set the tuned model's answers end after 45 (closed-book) and 61 (with
retrieval) of the 96 tokens allowed on average, so a third to a half of its decoding steps'
rows are answers that already ended. Here a row that ends leaves the batch (its key/value cache
rows are dropped), and the steps after it compute only the rows still answering. The choice of
every token is `generate`'s: the same logits processors on the float32 scores of the last
position, then greedy or temperature / top-p sampling.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from llm_assets.settings import GenerationConfig

# (model, input_ids, attention, config, processors, eos id, pad id) -> each row's answer ids
Decoder = Callable[
    [Any, Any, Any, GenerationConfig, Sequence[Any], int | None, int | None], list[list[int]]
]


def _cache_of(output: Any) -> Any:
    """The key/value cache a forward pass returned (transformers 5 names it `cache`, 4.x
    `past_key_values`)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _forward_parameters(model: Any) -> frozenset[str]:
    """What `model.forward` takes, read once per model class rather than at every step."""
    return _class_forward_parameters(model.__class__)


@functools.cache
def _class_forward_parameters(model_class: Any) -> frozenset[str]:
    return frozenset(inspect.signature(model_class.forward).parameters)


def _cache_parameter(parameters: frozenset[str]) -> str:
    # transformers 5 takes the key/value cache as `cache`; 4.x as `past_key_values`.
    return "cache" if "cache" in parameters else "past_key_values"


def prefill(
    model: Any, input_ids: Any, attention: Any, answer_positions: int = 0
) -> tuple[Any, Any]:
    """(the logits of each row's last position, the key/value cache) of a left-padded batch
    (`attention` 1 on real tokens). Positions count from each row's first real token, and the
    vocabulary head is computed for the last position only where the model allows it (every
    other position's would be computed for nothing). With `answer_positions`, the cache keeps
    room for that many decoding steps and writes them in place (`kv_cache.preallocated_cache`)
    where the model's cache allows it."""
    from llm_assets.evaluation.kv_cache import preallocated_cache

    parameters = _forward_parameters(model)
    cache = preallocated_cache(model, answer_positions) if answer_positions else None
    output = model(
        input_ids=input_ids,
        attention_mask=attention,
        position_ids=(attention.cumsum(dim=1) - 1).clamp(min=0),
        use_cache=True,
        **({"logits_to_keep": 1} if "logits_to_keep" in parameters else {}),
        **({_cache_parameter(parameters): cache} if cache is not None else {}),
    )
    return output.logits[:, -1, :], _cache_of(output)


def extend(model: Any, tokens: Any, attention: Any, cache: Any) -> tuple[Any, Any, Any]:
    """One decoding step of a batch `prefill` started: each row fed its next token (`tokens`,
    [rows, 1]). Returns (the new logits, the cache, the attention mask one position longer)."""
    import torch

    attention = torch.cat([attention, attention.new_ones((attention.shape[0], 1))], dim=1)
    output = model(
        input_ids=tokens,
        attention_mask=attention,
        position_ids=attention.sum(dim=1, keepdim=True) - 1,
        use_cache=True,
        **{_cache_parameter(_forward_parameters(model)): cache},
    )
    return output.logits[:, -1, :], _cache_of(output), attention


def left_padded(encoded: Sequence[list[int]], pad_id: int) -> tuple[Any, Any]:
    """(input_ids, attention mask) of token id lists padded on the left to the longest, so
    every row's next token follows its last one; the mask is 1 on real tokens."""
    import torch

    width = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, ids in enumerate(encoded):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention[row, width - len(ids) :] = 1
    return input_ids, attention


def _contiguous_input(_module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0].contiguous(), *args[1:])


@contextmanager
def contiguous_head_input(model: Any) -> Iterator[None]:
    """While inside, the vocabulary head reads a contiguous copy of its input. With
    `logits_to_keep` the head gets a strided slice of the hidden states (the last positions of
    each row), and torch multiplies a strided batch of rows by the [vocabulary x hidden] weight
    through a batched product that first copies the weight once per row: 16 copies of
    SmolLM2's 49,152 x 576 head (1.2 s) at every prompt of a batch of 16. The contiguous copy
    of the slice is a few kilobytes."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    handle = head.register_forward_pre_hook(_contiguous_input) if head is not None else None
    try:
        yield
    finally:
        if handle is not None:
            handle.remove()


def _is_prompt_learning(model: Any) -> bool:
    """peft's prompt methods add their virtual tokens inside their own `generate`."""
    active = getattr(model, "active_peft_config", None)
    return bool(getattr(active, "is_prompt_learning", False))


def decode_batch(
    model: Any,
    input_ids: Any,
    attention: Any,
    config: GenerationConfig,
    processors: Sequence[Any],
    eos_id: int | None,
    pad_id: int | None,
) -> list[list[int]]:
    """The generated token ids of each row of a left-padded batch (`input_ids`, `attention`
    1 on real tokens), up to (not including) its first end-of-sequence or padding token, at
    most `config.max_new_tokens`. `processors` are transformers logits processors, called as
    `generate` calls them; one with a `keep_rows(rows)` method is told which rows stay when
    some end. Call under `torch.no_grad()`. A peft prompt method decodes with its own
    `generate` (every row to the end)."""
    import torch

    if _is_prompt_learning(model):
        return decode_with_generate(model, input_ids, attention, config, processors, eos_id, pad_id)
    logits, cache = prefill(model, input_ids, attention, config.max_new_tokens)
    droppable = hasattr(cache, "batch_select_indices")
    warpers = _sampling_warpers(config)
    sequences = input_ids
    answering = list(range(len(input_ids)))  # the batch's rows, by their row in `input_ids`
    ended_rows: set[int] = set()
    answers: list[list[int]] = [[] for _ in answering]
    for step in range(config.max_new_tokens):
        scores = logits.to(dtype=torch.float32)
        for processor in processors:
            scores = processor(sequences, scores)
        if warpers:
            for warper in warpers:
                scores = warper(sequences, scores)
            chosen = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            chosen = scores.argmax(dim=-1)
        ending = []
        for position, (row, token) in enumerate(zip(answering, chosen.tolist(), strict=True)):
            if row in ended_rows:
                continue
            if token == eos_id or token == pad_id:
                ended_rows.add(row)
                ending.append(position)
            else:
                answers[row].append(token)
        if len(ended_rows) == len(answers) or step == config.max_new_tokens - 1:
            break
        if ending and droppable:
            kept = [position for position in range(len(answering)) if position not in ending]
            index = torch.tensor(kept, device=sequences.device)
            cache.batch_select_indices(index)
            sequences, attention, chosen = sequences[index], attention[index], chosen[index]
            answering = [answering[position] for position in kept]
            for processor in processors:
                if hasattr(processor, "keep_rows"):
                    processor.keep_rows(kept)
        elif ended_rows and not droppable:
            # A cache that cannot drop rows keeps them, fed padding; their tokens are ignored.
            chosen = chosen.masked_fill(
                torch.tensor([row in ended_rows for row in answering], device=chosen.device),
                pad_id if pad_id is not None else 0,
            )
        sequences = torch.cat([sequences, chosen[:, None]], dim=1)
        logits, cache, attention = extend(model, chosen[:, None], attention, cache)
    return answers


def decode_with_generate(
    model: Any,
    input_ids: Any,
    attention: Any,
    config: GenerationConfig,
    processors: Sequence[Any],
    eos_id: int | None,
    pad_id: int | None,
) -> list[list[int]]:
    """What `decode_batch` returns, through the model's own `generate` (every row computed
    until the batch's longest answer ends): the peer it is measured and tested against."""
    sampling = (
        {"do_sample": True, "temperature": config.temperature, "top_p": config.top_p}
        if config.do_sample
        else {"do_sample": False}
    )
    output = model.generate(
        input_ids=input_ids,
        attention_mask=attention,
        max_new_tokens=config.max_new_tokens,
        # 1.0 overrides a model's own default: the penalty is one of `processors`.
        repetition_penalty=1.0,
        logits_processor=list(processors),
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        **sampling,
    )
    width = input_ids.shape[1]
    return [until_eos(ids, eos_id, pad_id) for ids in output[:, width:].tolist()]


def until_eos(token_ids: list[int], eos_id: int | None, pad_id: int | None) -> list[int]:
    """The generated ids up to (not including) the first end-of-sequence token."""
    for index, token in enumerate(token_ids):
        if token == eos_id or token == pad_id:
            return token_ids[:index]
    return token_ids


def _sampling_warpers(config: GenerationConfig) -> list[Any]:
    """generate's temperature and top-p warpers when `config.do_sample`; none for greedy."""
    if not config.do_sample:
        return []
    from transformers import TemperatureLogitsWarper, TopPLogitsWarper

    warpers: list[Any] = []
    if config.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(config.temperature))
    if config.top_p < 1.0:
        warpers.append(TopPLogitsWarper(config.top_p))
    return warpers
