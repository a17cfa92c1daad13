"""Retrieved chunks in a prompt: the one format training, evaluation and serving all use.

A model trained on prompts whose context reads one way and served prompts that read another
answers worse without any error, as a chat template that differs between training and serving
does. So every stage builds its prompt with `grounded_messages`, and the blocking check
`sft_dataset_context_renders_like_serving` proves the stored training rows still render as
evaluation and serving would render them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llm_assets.rag.index import RetrievedChunk
from llm_assets.rag.lexical import content_words

Retrieve = Callable[[str, int], list[RetrievedChunk]]

# Where a passage may start: after a sentence's end, a colon or a table cell's bar.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?:|])\s+")

CONTEXT_PREAMBLE = "Answer with the help of these excerpts from the documentation when they apply."


@dataclass(frozen=True)
class ContextFormat:
    """How many chunks a prompt carries and how much of their text, in all."""

    k: int = 3
    max_chars: int = 2000


def context_text(
    chunks: Sequence[RetrievedChunk], max_chars: int, question: str = ""
) -> tuple[str, list[str]]:
    """The chunks as numbered excerpts, in the order given, cut to `max_chars` in all; and the
    ids of the chunks that made it in (whole or cut). A chunk cut short keeps the passage that
    shares most words with `question` (see `focused_excerpt`)."""
    text = CONTEXT_PREAMBLE
    used: list[str] = []
    asked = content_words(question) if question else set()
    for number, chunk in enumerate(chunks, start=1):
        where = f"{chunk.uri} > {chunk.heading}" if chunk.heading else chunk.uri
        header = f"\n\n[{number}] ({where})\n"
        room = max_chars - len(text) - len(header)
        if room < 40:  # too little left for a useful excerpt
            break
        text += header + focused_excerpt(" ".join(chunk.text.split()), room, asked)
        used.append(chunk.chunk_id)
    return text, used


def focused_excerpt(text: str, room: int, asked: set[str]) -> str:
    """`text` when it fits in `room` characters; else the `room` characters from the sentence
    start whose passage holds most of the words `asked` (the earliest such start; the head of
    `text` when none matches). The character budget falls on the last chunks, and the fact a
    question asks for is as often in a chunk's end as in its head (at 1,000 characters of
    hybrid search's top 3, the fact was in the chunks for 34 of 42 dev questions, in the
    context for 30 cut at the head and 31 cut so: benchmarks/bench_rag_context.py)."""
    if len(text) <= room:
        return text
    if not asked:
        return text[:room]
    starts = [0, *(match.end() for match in _SENTENCE_BREAK.finditer(text))]
    best = max(
        starts, key=lambda start: (len(content_words(text[start : start + room]) & asked), -start)
    )
    return text[best : best + room]


def with_system_prompt(
    messages: list[dict[str, str]], system_prompt: str | None
) -> list[dict[str, str]]:
    """`messages` started by `system_prompt` when they have no system message of their own: the
    model then reads a request as it read every training conversation."""
    if not system_prompt or any(message["role"] == "system" for message in messages):
        return messages
    return [{"role": "system", "content": system_prompt}, *messages]


def last_question(messages: Sequence[dict[str, str]]) -> str:
    """The last user message: what retrieval searches for."""
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


def grounded_messages(
    messages: list[dict[str, str]],
    chunks: Sequence[RetrievedChunk],
    system_prompt: str | None,
    max_chars: int,
) -> tuple[list[dict[str, str]], list[str]]:
    """`messages` as the model reads them: started by `system_prompt` when they have no system
    message, and with `chunks` as context joined to that system message (chat templates expect
    at most one, at the start); and the ids of the chunks used. Without chunks only the system
    prompt is added, so a closed-book prompt is the same conversation minus the context."""
    messages = with_system_prompt(messages, system_prompt)
    text, used = context_text(chunks, max_chars, last_question(messages) if chunks else "")
    if not used:
        return messages, []
    if messages and messages[0]["role"] == "system":
        first = {"role": "system", "content": f"{messages[0]['content']}\n\n{text}"}
        return [first, *messages[1:]], used
    return [{"role": "system", "content": text}, *messages], used


# Beside a model trained with retrieval: evaluation, the red team and serving read it, so the
# model is always asked the way it was trained, without a flag to remember.
CONTEXT_FORMAT_FILE = "retrieval_context.json"


def write_context_format(folder: Path, context: ContextFormat) -> None:
    (folder / CONTEXT_FORMAT_FILE).write_text(
        json.dumps({"k": context.k, "max_chars": context.max_chars}), encoding="utf-8"
    )


def read_context_format(folder: str | Path | None) -> ContextFormat | None:
    """The context format a model in `folder` was trained with, or None (closed-book)."""
    if not folder:
        return None
    path = Path(folder) / CONTEXT_FORMAT_FILE
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return ContextFormat(int(saved["k"]), int(saved["max_chars"]))
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path}: not a context format ({error}); it should be "
            '{"k": <chunks>, "max_chars": <characters>}, as qlora_adapter writes it'
        ) from error
