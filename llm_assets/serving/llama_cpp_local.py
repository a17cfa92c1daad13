"""`serving.engine: llama-cpp` with context-aware decoding (evaluation.generation.
context_contrast > 0): the GGUF export decoded in the gateway's own process.

Context-aware decoding chooses each token from the logits of the prompt with its context and
of the same prompt without it; llama.cpp's server returns neither, so the gateway runs the
file itself on two llama.cpp contexts, with the decoding loop evaluation uses
(`llama_cpp_engine.answer_tokens`): what is served is what was evaluated, token for token.
Like the server, it generates one request at a time, on one worker thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from llm_assets.serving.engine import Completion, EngineUnavailable, Prompt, TextStream
from llm_assets.serving.protocol import Sampling
from llm_assets.settings import GenerationConfig


class LlamaCppLocalEngine:
    """A ChatEngine over a GGUF file loaded with llama-cpp-python in this process."""

    name = "llama.cpp (in process)"

    def __init__(self, grounded: Any, closed_book: Any, tokenizer: Any, context: int) -> None:
        self.grounded = grounded
        self.closed_book = closed_book
        self.tokenizer = tokenizer
        self.context_length = context
        self.stop_ids = {
            token for token in (tokenizer.eos_token_id, tokenizer.pad_token_id) if token is not None
        }
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-assets-llama")

    @classmethod
    def start(cls, export_dir: Path, context_length: int | None = None) -> LlamaCppLocalEngine:
        """Both contexts over `export_dir`/model.gguf, at most `context_length` tokens."""
        from llm_assets.datasets.chat_template import load_chat_tokenizer
        from llm_assets.evaluation.llama_cpp_engine import LlamaCppUnavailable, load_gguf
        from llm_assets.serving.llama_cpp_server import served_gguf

        gguf_file, context = served_gguf(export_dir, context_length)
        try:
            grounded = load_gguf(gguf_file, context)
            closed_book = load_gguf(gguf_file, context)
        except LlamaCppUnavailable as error:
            raise EngineUnavailable(str(error)) from error
        return cls(grounded, closed_book, load_chat_tokenizer(str(export_dir)), context)

    def prepare(self, messages: list[dict[str, str]]) -> Prompt:
        from llm_assets.serving.engine import render_prompt

        return self._worker.submit(render_prompt, self.tokenizer, messages).result()

    def complete(self, prompt: Prompt, sampling: Sampling) -> Completion:
        return self._worker.submit(self._generate, prompt, sampling, None, None).result()

    def stream(self, prompt: Prompt, sampling: Sampling) -> TextStream:
        pieces_queue: queue.Queue[str | None] = queue.Queue()
        cancelled = threading.Event()
        text_stream = TextStream(iter(()))

        def generate() -> Completion:
            try:
                return self._generate(prompt, sampling, pieces_queue, cancelled)
            finally:
                pieces_queue.put(None)  # the reader stops waiting, then sees any error

        def pieces() -> Iterator[str]:
            # One generation at a time: both llama.cpp contexts hold this request's tokens.
            generation = self._worker.submit(generate)
            try:
                while (piece := pieces_queue.get()) is not None:
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
        pieces: queue.Queue[str | None] | None,
        cancelled: threading.Event | None,
    ) -> Completion:
        produced: list[int] = []
        sent = ""
        for token in self._tokens(prompt, sampling):
            produced.append(token)
            if pieces is not None:
                text = self.tokenizer.decode(produced, skip_special_tokens=True)
                # A character split over tokens is sent once its last byte has come.
                if not text.endswith("\ufffd") and len(text) > len(sent):
                    pieces.put(text[len(sent) :])
                    sent = text
            if cancelled is not None and cancelled.is_set():
                break
        text = self.tokenizer.decode(produced, skip_special_tokens=True)
        if pieces is not None and len(text) > len(sent):
            pieces.put(text[len(sent) :])
        finish = "stop" if len(produced) < sampling.max_tokens else "length"
        return Completion(text.strip(), len(prompt.token_ids), len(produced), finish)

    def _tokens(self, prompt: Prompt, sampling: Sampling) -> Any:
        import numpy as np

        from llm_assets.evaluation.llama_cpp_engine import answer_tokens

        config = GenerationConfig(
            max_new_tokens=sampling.max_tokens,
            do_sample=not sampling.greedy,
            temperature=sampling.temperature if not sampling.greedy else 1.0,
            top_p=sampling.top_p,
            repetition_penalty=sampling.repetition_penalty,
            context_contrast=sampling.context_contrast,
        )
        closed = (self.closed_book, prompt.closed_book_ids) if prompt.closed_book_ids else None
        return answer_tokens(
            self.grounded,
            prompt.token_ids,
            config,
            self.stop_ids,
            np.random.default_rng(),
            closed,
        )

    def close(self) -> None:
        self._worker.shutdown(wait=True)
