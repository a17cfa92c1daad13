"""Context-aware decoding: the contrast itself on hand-made logits, and batched `generate`
(left padding, a key/value cache per side) against a reference that recomputes both prompts
in full at every step."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from llm_assets.datasets.chat_template import render_chat
from llm_assets.evaluation.context_aware import ContextContrast, contrasted_log_probs
from llm_assets.settings import GenerationConfig
from llm_assets_tests.test_evaluation_batching import tiny_model


def test_the_context_outweighs_memory_among_plausible_tokens_only() -> None:
    import torch

    # Token 1 is the model's memory (the closed-book prompt prefers it strongly), token 0 is
    # nearly as likely with the context, token 2 is implausible with the context but far
    # less likely still without it.
    grounded = np.array([1.9, 2.0, -5.0])
    closed_book = np.array([0.0, 4.0, -30.0])
    contrast = ContextContrast(alpha=0.5)

    assert int(np.argmax(grounded)) == 1
    scores = contrasted_log_probs(grounded, closed_book, contrast)
    assert int(np.argmax(scores)) == 0
    # Without the plausibility floor token 2 would win on the contrast alone.
    assert int(np.argmax(contrasted_log_probs(grounded, closed_book, ContextContrast(0.5, 0.0))))
    assert scores[2] == -np.inf

    as_torch = contrasted_log_probs(
        torch.from_numpy(grounded[None]), torch.from_numpy(closed_book[None]), contrast
    )
    assert as_torch[0, :2].tolist() == pytest.approx(scores[:2].tolist(), abs=1e-5)
    assert math.isinf(as_torch[0, 2].item())

    # No contrast: the grounded log-probabilities (of the plausible tokens).
    plain = contrasted_log_probs(grounded, closed_book, ContextContrast(0.0))
    log_probs = grounded - np.log(np.exp(grounded).sum())
    assert plain[:2] == pytest.approx(log_probs[:2])


def _reference_answer(
    model: Any,
    grounded_ids: list[int],
    closed_ids: list[int] | None,
    config: GenerationConfig,
    stop_ids: set[int],
) -> list[int]:
    """Greedy context-aware decoding recomputing both prompts in full at every step."""
    import torch

    from llm_assets.evaluation.generation import answer_repetition_penalty

    answer: list[int] = []
    (penalty,) = answer_repetition_penalty(config.repetition_penalty, len(grounded_ids))
    for _ in range(config.max_new_tokens):
        with torch.no_grad():
            scores = model(input_ids=torch.tensor([grounded_ids + answer])).logits[:, -1]
            if closed_ids is not None:
                closed = model(input_ids=torch.tensor([closed_ids + answer])).logits[:, -1]
                contrast = ContextContrast(config.context_contrast)
                scores = contrasted_log_probs(scores, closed, contrast)
        token = int(penalty(torch.tensor([grounded_ids + answer]), scores).argmax(dim=-1))
        if token in stop_ids:
            break
        answer.append(token)
    return answer


def test_batched_context_aware_answers_equal_the_full_recomputation() -> None:
    from llm_assets.evaluation.generation import generate_answers

    tokenizer, model = tiny_model(seed=7)
    questions = ["Restart? " * 3, "Sync the folders?", "Aurora?"]
    contexts = ["Restart the Aurora client. " * 4, None, "Selective sync keeps folders. " * 2]
    grounded: list[str] = []
    closed_book: list[str | None] = []
    for question, context in zip(questions, contexts, strict=True):
        user = [{"role": "user", "content": question}]
        system = [{"role": "system", "content": f"Excerpts: {context}"}] if context else []
        grounded.append(render_chat(tokenizer, [*system, *user], for_generation=True))
        closed_book.append(render_chat(tokenizer, user, for_generation=True) if context else None)
    config = GenerationConfig(max_new_tokens=8, batch_size=2, context_contrast=1.0)
    stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}

    contrasted = generate_answers(model, tokenizer, grounded, config, closed_book=closed_book)
    plain = generate_answers(model, tokenizer, grounded, config)

    for number, (prompt, twin) in enumerate(zip(grounded, closed_book, strict=True)):
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        twin_ids = tokenizer(twin, add_special_tokens=False)["input_ids"] if twin else None
        expected = _reference_answer(model, ids, twin_ids, config, stop_ids)
        assert contrasted.new_tokens[number] == len(expected)
        assert (
            contrasted.answers[number]
            == tokenizer.decode(expected, skip_special_tokens=True).strip()
        )
    assert min(contrasted.new_tokens) > 0
    # The prompt without context decodes as it always did; the others changed.
    assert contrasted.answers[1] == plain.answers[1]
    assert contrasted.answers != plain.answers


def test_the_closed_book_side_reads_like_a_full_forward_at_every_step() -> None:
    """The processor's cached, left-padded closed-book logits equal a fresh forward over each
    closed-book prompt and the answer so far (a wrong position or mask changes them)."""
    import torch

    from llm_assets.evaluation.context_aware import ClosedBookContrast

    tokenizer, model = tiny_model(seed=11)
    closed = [
        tokenizer("Restart the Aurora client.", add_special_tokens=False)["input_ids"],
        tokenizer("Sync?", add_special_tokens=False)["input_ids"],
    ]
    width = 20  # the grounded prompts' padded width: the processor only reads what follows
    contrast = ContextContrast(alpha=1.0, plausibility=0.0)
    processor = ClosedBookContrast(model, [closed[0], None, closed[1]], 0, contrast)
    generator = torch.Generator().manual_seed(0)
    grounded_ids = torch.randint(3, 200, (3, width), generator=generator)
    answer = torch.empty((3, 0), dtype=torch.long)
    for step in range(4):
        scores = torch.randn((3, model.config.vocab_size), generator=generator)
        contrasted = processor(torch.cat([grounded_ids, answer], dim=1), scores)
        for row, ids in ((0, closed[0]), (2, closed[1])):
            full = torch.tensor([ids + answer[row].tolist()])
            with torch.no_grad():
                expected_closed = model(input_ids=full).logits[0, -1]
            expected = contrasted_log_probs(scores[row], expected_closed, contrast)
            assert torch.allclose(contrasted[row], expected, atol=1e-4), (step, row)
        assert torch.equal(contrasted[1], scores[1])
        answer = torch.cat([answer, torch.randint(3, 200, (3, 1), generator=generator)], dim=1)
