"""The generation engine behind the API: a conversation and a `Sampling` in, an answer out (whole,
or as a stream of text pieces).

`serving.engine` picks one. `llama-cpp` (a GGUF export, `llama_cpp_server`) and `vllm` (vLLM's
OpenAI server on a GPU machine, `vllm_server`) run in engine processes of their own
(`engine_process`). `transformers` loads the model the way evaluation does (`load_model`) and
generates in this process, one request at a time: on a CPU every core already works on one
generation, and two at once would only slow both. All render prompts with the tokenizer and chat
template saved with the adapter, the ones training used; no other template is ever applied.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from llm_assets.evaluation.decoding import until_eos
from llm_assets.evaluation.generation import ModelUnderTest, answer_repetition_penalty
from llm_assets.serving.protocol import Sampling


class EngineUnavailable(RuntimeError):
    """The engine named in the profile cannot run here; the message says what to do."""


@dataclass(frozen=True)
class Prompt:
    """A conversation rendered with the training chat template, and its token ids; with
    retrieved context, and when answers are decoded context-aware, also the ids of the same
    conversation without the context."""

    text: str
    token_ids: list[int]
    closed_book_ids: list[int] | None = None


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop": the model ended its answer; "length": max_tokens was reached


@dataclass
class TextStream:
    """The pieces of an answer as they are generated; once iterated to the end, `completion`
    holds the whole answer and its token counts. Closing it early stops the generation."""

    pieces: Iterator[str]
    completion: Completion | None = field(default=None)

    def __iter__(self) -> Iterator[str]:
        return self.pieces

    def close(self) -> None:
        """Stop generating (a client went away); safe to call after the end."""
        close = getattr(self.pieces, "close", None)
        if close is not None:
            close()


class ChatEngine(Protocol):
    context_length: int

    def prepare(self, messages: list[dict[str, str]]) -> Prompt:
        """The prompt the model will continue: the conversation and an open assistant turn."""
        ...

    def complete(self, prompt: Prompt, sampling: Sampling) -> Completion: ...

    def stream(self, prompt: Prompt, sampling: Sampling) -> TextStream: ...


def load_engine(kind: str, model: ModelUnderTest) -> ChatEngine:
    """The engine `serving.engine` names, with `model` loaded."""
    if kind == "transformers":
        return TransformersEngine.load(model)
    if kind == "vllm":
        raise EngineUnavailable(
            "serving.engine vllm runs vLLM's own server in a process of its own: start it with "
            "VllmServerEngine.start(<model>, <repetition penalty>) (llm-assets serve does)"
        )
    if kind == "llama-cpp":
        raise EngineUnavailable(
            "serving.engine llama-cpp serves a GGUF export, not a model folder: start it with "
            "LlamaCppServerEngine.start(<export folder>) (llm-assets serve does)"
        )
    raise EngineUnavailable(
        f"serving.engine {kind!r} is unknown; use llama-cpp, transformers or vllm"
    )


def tokenizer_for(model: ModelUnderTest) -> Any:
    from llm_assets.datasets.chat_template import load_chat_tokenizer

    # The adapter folder holds the tokenizer and chat template saved at training.
    return load_chat_tokenizer(model.adapter_path or model.base_model_path)


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> Prompt:
    from llm_assets.datasets.chat_template import render_chat

    text = render_chat(tokenizer, messages, for_generation=True)
    return Prompt(text, list(tokenizer(text, add_special_tokens=False)["input_ids"]))


class TransformersEngine:
    """`model.generate` in this process, streamed through transformers' `TextIteratorStreamer`.

    Everything that touches the model or the tokenizer runs in one dedicated thread, in order:
    one request generates at a time (on a CPU every core already works on it), a Rust tokenizer
    is never called from two threads at once, and a generation runs on the same thread whether
    it is streamed or not, so both take the same time."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.context_length = int(getattr(model.config, "max_position_embeddings", 0) or 2048)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-assets-generate")
        eos = tokenizer.eos_token_id
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos

    @classmethod
    def load(cls, model: ModelUnderTest) -> TransformersEngine:
        from llm_assets.evaluation.generation import load_model

        return cls(load_model(model), tokenizer_for(model))

    def prepare(self, messages: list[dict[str, str]]) -> Prompt:
        return self._worker.submit(render_prompt, self.tokenizer, messages).result()

    def complete(self, prompt: Prompt, sampling: Sampling) -> Completion:
        return self._worker.submit(self._generate, prompt, sampling).result()

    def stream(self, prompt: Prompt, sampling: Sampling) -> TextStream:
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancelled = threading.Event()
        text_stream = TextStream(iter(()))

        def generate() -> Completion:
            try:
                return self._generate(prompt, sampling, streamer, cancelled)
            except BaseException:
                streamer.end()  # the reader stops waiting, then sees the error
                raise

        def pieces() -> Iterator[str]:
            generation = self._worker.submit(generate)
            try:
                for piece in streamer:
                    if piece:
                        yield piece
                text_stream.completion = generation.result()
            finally:
                # A client that went away stops its generation at the next token.
                cancelled.set()

        text_stream.pieces = pieces()
        return text_stream

    def _generate(
        self,
        prompt: Prompt,
        sampling: Sampling,
        streamer: Any = None,
        cancelled: threading.Event | None = None,
    ) -> Completion:
        import torch
        from transformers import StoppingCriteriaList

        device = next(self.model.parameters()).device
        input_ids = torch.tensor([prompt.token_ids], dtype=torch.long, device=device)
        sampled = (
            {"do_sample": False}
            if sampling.greedy
            else {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p}
        )
        stopping = StoppingCriteriaList([_Cancelled(cancelled)] if cancelled else [])
        processors = answer_repetition_penalty(sampling.repetition_penalty, len(prompt.token_ids))
        if prompt.closed_book_ids and sampling.context_contrast > 0:
            from llm_assets.evaluation.context_aware import ClosedBookContrast, ContextContrast

            contrast = ContextContrast(sampling.context_contrast)
            processors.insert(
                0, ClosedBookContrast(self.model, [prompt.closed_book_ids], self._pad_id, contrast)
            )
        with torch.no_grad():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=sampling.max_tokens,
                repetition_penalty=1.0,
                logits_processor=processors,
                pad_token_id=self._pad_id,
                eos_token_id=self.tokenizer.eos_token_id,
                streamer=streamer,
                stopping_criteria=stopping,
                **sampled,
            )
        produced = until_eos(
            output[0, len(prompt.token_ids) :].tolist(), self.tokenizer.eos_token_id, self._pad_id
        )
        # Fewer tokens than allowed: a stop token (or the client leaving) ended it.
        finish = "stop" if len(produced) < sampling.max_tokens else "length"
        return Completion(
            text=self.tokenizer.decode(produced, skip_special_tokens=True).strip(),
            prompt_tokens=len(prompt.token_ids),
            completion_tokens=len(produced),
            finish_reason=finish,
        )


class _Cancelled:
    """A stopping criterion that ends generation once `event` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full(
            (input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device
        )
