"""The decoding loop evaluation answers with: rows whose answer ended leave the batch, and every
answer is still token for token what transformers' `generate` gives (greedy, the answer-only
repetition penalty, context-aware decoding)."""

from typing import Any

from llm_assets.datasets.chat_template import render_chat
from llm_assets.evaluation.context_aware import ClosedBookContrast, ContextContrast
from llm_assets.evaluation.decoding import (
    contiguous_head_input,
    decode_batch,
    decode_with_generate,
    left_padded,
)
from llm_assets.evaluation.generation import answer_repetition_penalty
from llm_assets.settings import GenerationConfig
from llm_assets_tests.test_evaluation_batching import tiny_model

QUESTIONS = ["Restart? " * 6, "Sync?", "Folders in the cloud? " * 3, "Aurora client?"]


def chat_batch(tokenizer: Any, texts: list[str]) -> tuple[Any, Any, int]:
    """(input_ids, attention mask, padding id) of `texts` rendered as chat prompts."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    encoded = [
        tokenizer(
            render_chat(tokenizer, [{"role": "user", "content": text}], for_generation=True),
            add_special_tokens=False,
        )["input_ids"]
        for text in texts
    ]
    return (*left_padded(encoded, pad_id), pad_id)


def an_end_token(answers: list[list[int]], steps: int, distinct: int = 3) -> int:
    """A token that, taken as the end of an answer, ends the rows at `distinct` different steps
    or more (none at the first): the rows then leave the batch one by one."""
    for token in sorted({token for answer in answers for token in answer}):
        ends = [answer.index(token) if token in answer else steps for answer in answers]
        if len(set(ends)) >= distinct and min(ends) > 0:
            return token
    raise AssertionError("no token ends the answers at different steps")


def test_answers_that_end_leave_the_batch_and_the_rest_decode_as_generate_does() -> None:
    import torch

    tokenizer, model = tiny_model(seed=5)
    input_ids, attention, pad_id = chat_batch(tokenizer, QUESTIONS)
    config = GenerationConfig(max_new_tokens=10, repetition_penalty=1.3)
    width = input_ids.shape[1]

    def penalty() -> list[Any]:
        return answer_repetition_penalty(config.repetition_penalty, width)

    with torch.no_grad():
        free = decode_batch(model, input_ids, attention, config, penalty(), None, None)
    end = an_end_token(free, config.max_new_tokens)

    rows_per_forward: list[int] = []

    def count_rows(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        rows_per_forward.append(int(kwargs["input_ids"].shape[0]))

    handle = model.register_forward_pre_hook(count_rows, with_kwargs=True)
    with torch.no_grad():
        ours = decode_batch(model, input_ids, attention, config, penalty(), end, pad_id)
    handle.remove()
    with torch.no_grad():
        theirs = decode_with_generate(model, input_ids, attention, config, penalty(), end, pad_id)

    assert ours == theirs
    assert [len(answer) for answer in ours] == [
        answer.index(end) if end in answer else len(answer) for answer in free
    ]
    # Every row starts; each that ended is gone from the steps after it.
    assert rows_per_forward[0] == len(QUESTIONS)
    assert rows_per_forward == sorted(rows_per_forward, reverse=True)
    assert rows_per_forward[-1] < len(QUESTIONS)
    assert sum(rows_per_forward) < len(QUESTIONS) * len(rows_per_forward)


def test_context_aware_rows_leave_both_streams_and_decode_as_generate_does() -> None:
    import torch

    tokenizer, model = tiny_model(seed=7)
    grounded, grounded_mask, pad_id = chat_batch(
        tokenizer, [f"Excerpts: Restart the Aurora client. {question}" for question in QUESTIONS]
    )
    twins: list[list[int] | None] = [
        tokenizer(
            render_chat(tokenizer, [{"role": "user", "content": question}], for_generation=True),
            add_special_tokens=False,
        )["input_ids"]
        for question in QUESTIONS
    ]
    twins[1] = None  # a prompt without context keeps its own scores
    config = GenerationConfig(max_new_tokens=10, context_contrast=1.0)

    def contrast() -> list[Any]:
        return [ClosedBookContrast(model, twins, pad_id, ContextContrast(1.0))]

    with torch.no_grad():
        free = decode_batch(model, grounded, grounded_mask, config, contrast(), None, None)
        end = an_end_token(free, config.max_new_tokens, distinct=2)
        ours = decode_batch(model, grounded, grounded_mask, config, contrast(), end, pad_id)
        theirs = decode_with_generate(
            model, grounded, grounded_mask, config, contrast(), end, pad_id
        )
    assert ours == theirs
    assert len({len(answer) for answer in ours}) >= 2


def test_the_head_reads_a_contiguous_slice_and_answers_the_same() -> None:
    import torch

    tokenizer, model = tiny_model(seed=3)
    input_ids, attention, _ = chat_batch(tokenizer, QUESTIONS)
    head = model.get_output_embeddings()
    seen: list[bool] = []

    def probe(_module: Any, args: tuple[Any, ...]) -> None:
        seen.append(args[0].is_contiguous())

    with torch.no_grad():
        handle = head.register_forward_pre_hook(probe)
        plain = model(input_ids=input_ids, attention_mask=attention, logits_to_keep=2).logits
        handle.remove()
        with contiguous_head_input(model):
            # Registered after the context's own hook, so it sees what the head reads.
            handle = head.register_forward_pre_hook(probe)
            contiguous = model(
                input_ids=input_ids, attention_mask=attention, logits_to_keep=2
            ).logits
            handle.remove()
    assert seen == [False, True]
    assert torch.equal(plain, contiguous)
    assert not head._forward_pre_hooks
