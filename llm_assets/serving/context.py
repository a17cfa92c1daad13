"""Retrieved chunks as context: the hybrid approach, where the fine-tuned model answers in the
organisation's voice and the `rag_index` supplies facts that changed after training."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llm_assets.rag.index import RetrievedChunk

Retrieve = Callable[[str, int], list[RetrievedChunk]]

CONTEXT_PREAMBLE = "Answer with the help of these excerpts from the documentation when they apply."


def context_text(chunks: Sequence[RetrievedChunk], max_chars: int) -> tuple[str, list[str]]:
    """The chunks as numbered excerpts, closest first, cut to `max_chars` in all; and the ids
    of the chunks that made it in (whole or cut)."""
    text = CONTEXT_PREAMBLE
    used: list[str] = []
    for number, chunk in enumerate(chunks, start=1):
        where = f"{chunk.uri} > {chunk.heading}" if chunk.heading else chunk.uri
        header = f"\n\n[{number}] ({where})\n"
        room = max_chars - len(text) - len(header)
        if room < 40:  # too little left for a useful excerpt
            break
        text += header + " ".join(chunk.text.split())[:room]
        used.append(chunk.chunk_id)
    return text, used


def with_context(
    messages: list[dict[str, str]], retrieve: Retrieve, k: int, max_chars: int
) -> tuple[list[dict[str, str]], list[str]]:
    """`messages` with the chunks closest to the last user message as context in the system
    message (added first, or joined to the conversation's own system message, since chat
    templates expect at most one, at the start); and the ids of the chunks used."""
    question = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    text, used = context_text(retrieve(question, k), max_chars)
    if not used:
        return messages, []
    if messages and messages[0]["role"] == "system":
        first = {"role": "system", "content": f"{messages[0]['content']}\n\n{text}"}
        return [first, *messages[1:]], used
    return [{"role": "system", "content": text}, *messages], used
