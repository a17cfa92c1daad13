"""A GGUF file answering and scored through llama.cpp (llama-cpp-python), the way transformers
models are in `generation` and `perplexity`.

Prompts are rendered and tokenized with the training tokenizer and handed to llama.cpp as token
ids, so both engines read exactly the same tokens. Greedy decoding applies the repetition penalty
the way transformers does (every token of the prompt and the answer so far, logits divided when
positive, multiplied when negative): on the f16 file the answers are then token-identical to the
merged fp32 model's. llama.cpp generates one sequence at a time; on a CPU that is still several
times faster than transformers' batched fp32 `generate`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from llm_assets.evaluation.generation import Generations
from llm_assets.evaluation.perplexity import PerplexityResult, answer_token_spans
from llm_assets.settings import GenerationConfig


class LlamaCppUnavailable(RuntimeError):
    """llama-cpp-python is not installed here; the message says how to install it."""


def load_gguf(
    path: Path, context_length: int, all_logits: bool = False, threads: int | None = None
) -> Any:
    """A `llama_cpp.Llama` over the file, on the CPU; `all_logits` keeps the logits of every
    prompt position (perplexity needs them, generation does not). `threads` defaults to half the
    cores, as served; a pipeline step passes `step_threads()`."""
    try:
        from llama_cpp import Llama
    except ImportError as error:
        raise LlamaCppUnavailable(
            f"llama-cpp-python cannot be imported ({error}); `make setup` builds and installs "
            "it (or: CMAKE_ARGS=-DGGML_NATIVE=OFF pip install 'llama-cpp-python[server]==0.3.36')"
        ) from error
    import os

    # Half the cores for prompts as for tokens (llama-cpp-python's default gives prompts every
    # core): its threads spin while waiting, and a busy core stalls them all.
    threads = threads or max(1, (os.cpu_count() or 2) // 2)
    return Llama(
        model_path=str(path),
        n_ctx=context_length,
        n_batch=min(512, context_length),
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=all_logits,
        verbose=False,
    )


def step_threads() -> int:
    """The threads a pipeline step gives llama.cpp: those torch computes with in the same step
    (every core unless OMP_NUM_THREADS or torch.set_num_threads says otherwise). A step has its
    cores to itself (one step at a time in process; multiprocess runs cap torch's threads the
    same way), unlike a server sharing them with its request threads."""
    import torch

    return max(1, torch.get_num_threads())


def gguf_perplexity(
    llm: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], max_length: int
) -> PerplexityResult:
    """exp(mean NLL per answer token), on the same token spans `perplexity.perplexity` scores;
    `llm` must be loaded with `all_logits`."""
    import numpy as np

    row_nll: list[float] = []
    row_tokens: list[int] = []
    for ids, answer_start in answer_token_spans(tokenizer, conversations, max_length):
        llm.reset()
        llm.eval(ids)
        # Row i of the scores predicts token i + 1.
        logits = np.asarray(llm.scores[answer_start - 1 : len(ids) - 1], dtype=np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        targets = np.asarray(ids[answer_start:])
        row_nll.append(float(-log_probs[np.arange(len(targets)), targets].sum()))
        row_tokens.append(len(targets))
    total_tokens = sum(row_tokens)
    if total_tokens == 0:
        raise ValueError("no answer tokens to score: the evaluation set is empty")
    mean_nll = sum(row_nll) / total_tokens
    return PerplexityResult(
        math.exp(mean_nll), mean_nll, total_tokens, len(row_nll), row_nll, row_tokens
    )


def _penalized(logits: Any, seen: Any, penalty: float) -> Any:
    """transformers' RepetitionPenaltyLogitsProcessor: every token already in the answer made
    less likely, by dividing a positive logit or multiplying a negative one."""
    import numpy as np

    if penalty == 1.0:
        return logits
    chosen = logits[seen]
    logits[seen] = np.where(chosen < 0, chosen * penalty, chosen / penalty)
    return logits


def answer_token_ids(
    llm: Any,
    prompt_ids: list[int],
    config: GenerationConfig,
    stop_ids: set[int],
    rng: Any = None,
    closed_book: tuple[Any, list[int]] | None = None,
) -> list[int]:
    """The answer's token ids (without the stop token) to one tokenized prompt: greedy, or
    sampled with temperature and top-p when `config.do_sample`. With `closed_book` (a second
    llama.cpp context over the same file, and the prompt's ids without its retrieved context)
    and `config.context_contrast` > 0, decoded context-aware as `generation` does."""
    return list(answer_tokens(llm, prompt_ids, config, stop_ids, rng, closed_book))


def answer_tokens(
    llm: Any,
    prompt_ids: list[int],
    config: GenerationConfig,
    stop_ids: set[int],
    rng: Any = None,
    closed_book: tuple[Any, list[int]] | None = None,
) -> Iterator[int]:
    """`answer_token_ids` one token at a time, as each is chosen (serving streams them)."""
    import numpy as np

    from llm_assets.evaluation.context_aware import ContextContrast, contrasted_log_probs

    contrast = ContextContrast(config.context_contrast) if config.context_contrast else None
    closed_llm = closed_book[0] if closed_book and contrast else None
    llm.reset()
    llm.eval(prompt_ids)
    if closed_llm is not None and closed_book is not None:
        closed_llm.reset()
        closed_llm.eval(closed_book[1])
    # Only the answer's own tokens are penalized, as in transformers (answer_repetition_penalty)
    # and llama.cpp's sampler: a fact copied from the prompt's context is not repetition.
    seen = np.zeros(llm.n_vocab(), dtype=bool)
    for _ in range(config.max_new_tokens):
        logits = _last_logits(llm)
        if closed_llm is not None and contrast is not None:
            logits = contrasted_log_probs(logits, _last_logits(closed_llm), contrast)
        logits = _penalized(logits, seen, config.repetition_penalty)
        if config.do_sample:
            token = _sample(logits, config, rng or np.random.default_rng(config.seed))
        else:
            token = int(np.argmax(logits))
        if token in stop_ids:
            return
        yield token
        seen[token] = True
        llm.eval([token])
        if closed_llm is not None:
            closed_llm.eval([token])


def _last_logits(llm: Any) -> Any:
    """A copy of the logits after the last evaluated token (without `all_logits`, llama.cpp
    keeps only those, and llama-cpp-python does not copy them into `scores`)."""
    import llama_cpp
    import numpy as np

    pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.array(np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),)), dtype=np.float32)


def _sample(logits: Any, config: GenerationConfig, rng: Any) -> int:
    import numpy as np

    scaled = logits.astype(np.float64) / config.temperature
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    order = np.argsort(-probs)
    keep = np.cumsum(probs[order]) - probs[order] < config.top_p
    kept = order[keep]
    return int(rng.choice(kept, p=probs[kept] / probs[kept].sum()))


def gguf_generate_answers(
    llm: Any,
    tokenizer: Any,
    prompts: list[str],
    config: GenerationConfig,
    label: str = "model",
    closed_book: Sequence[str | None] | None = None,
    closed_llm: Any = None,
) -> Generations:
    """Answers to already-rendered `prompts`, in order, like `generation.generate_answers`
    (one prompt at a time: each is its own "batch" in the latencies). With `closed_book` and
    `closed_llm` (a second context over the same file) answers with context are decoded
    context-aware when `config.context_contrast` > 0."""
    import numpy as np

    stop_ids = {
        token for token in (tokenizer.eos_token_id, tokenizer.pad_token_id) if token is not None
    }
    rng = np.random.default_rng(config.seed)
    answers, new_tokens, latencies = [], [], []
    started = time.perf_counter()
    twins = list(closed_book) if closed_book is not None else [None] * len(prompts)
    for text, twin in zip(prompts, twins, strict=True):
        prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        contrast = None
        if twin is not None and closed_llm is not None:
            contrast = (closed_llm, tokenizer(twin, add_special_tokens=False)["input_ids"])
        answer_started = time.perf_counter()
        produced = answer_token_ids(llm, prompt_ids, config, stop_ids, rng, contrast)
        latencies.append(1000 * (time.perf_counter() - answer_started))
        new_tokens.append(len(produced))
        answers.append(tokenizer.decode(produced, skip_special_tokens=True).strip())
    return Generations(
        label=label,
        answers=answers,
        new_tokens=new_tokens,
        seconds=time.perf_counter() - started,
        batch_latencies_ms=latencies,
        batch_of_answer=list(range(len(prompts))),
    )
