"""Cleaned records cut into chunks small enough to embed, each traceable to its record.

A chunk is a character range of its record's passage (the text, then the response when the
record has one), so `passage[char_start:char_end] == text` always holds and the chunk id
`<source>/<record_id>#<n>` leads back to the record. Token counts come from the embedding
model's own tokenizer, passed in as `TokenSpans`, so a chunk never exceeds what the model reads.

Two strategies:
- `tokens`: sliding windows of `window` tokens, consecutive windows sharing `overlap` tokens.
- `paragraphs`: Markdown sections (a `#` heading line up to the next heading) and their
  blank-line paragraphs packed greedily up to `window` tokens, never across a heading; a
  paragraph longer than the window falls back to token windows. A fenced code block stays whole.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import pandas as pd

# The (start, end) character offsets of each token of a text, in order.
TokenSpans = Callable[[str], list[tuple[int, int]]]
ChunkingStrategy = Literal["paragraphs", "tokens"]

CHUNK_COLUMNS = [
    "chunk_id",
    "record_id",
    "source",
    "uri",
    "chunk_index",
    "heading",
    "char_start",
    "char_end",
    "tokens",
    "text",
]

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class ChunkSpan:
    """A chunk as a character range of the passage, with the heading path it sits under."""

    start: int
    end: int
    heading: str
    tokens: int


@dataclass(frozen=True)
class _Block:
    start: int
    end: int
    heading: str  # the heading path in effect, " > "-joined
    is_heading: bool


def record_passage(text: str, response: object = None) -> str:
    """What a record contributes to retrieval: its text, then its answer when it has one (a
    ticket's resolution is the knowledge worth finding)."""
    if isinstance(response, str) and response.strip():
        return f"{text}\n\n{response.strip()}"
    return text


def chunk_id(source: str, record_id: str, number: int) -> str:
    return f"{source}/{record_id}#{number}"


def _lines(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, line) of each line, `end` before the newline."""
    position = 0
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        yield position, position + len(stripped), stripped
        position += len(line)


def markdown_blocks(text: str) -> list[_Block]:
    """Heading lines and blank-line paragraphs of `text`, with the heading path of each; `#`
    lines inside fenced code are code, not headings."""
    blocks: list[_Block] = []
    path: list[tuple[int, str]] = []
    start: int | None = None
    end = 0
    in_fence = False

    def flush() -> None:
        nonlocal start
        if start is not None:
            blocks.append(_Block(start, end, " > ".join(title for _, title in path), False))
            start = None

    for line_start, line_end, line in _lines(text):
        heading = None if in_fence else _HEADING.match(line)
        if _FENCE.match(line):
            in_fence = not in_fence
        if heading:
            flush()
            level = len(heading.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level]
            path.append((level, heading.group(2).strip()))
            blocks.append(_Block(line_start, line_end, " > ".join(t for _, t in path), True))
        elif not line.strip() and not in_fence:
            flush()
        else:
            start = line_start if start is None else start
            end = line_end
    flush()
    return blocks


def token_windows(
    spans: list[tuple[int, int]], window: int, overlap: int, heading: str = ""
) -> list[ChunkSpan]:
    """Windows of `window` tokens, each starting `window - overlap` tokens after the last; the
    last window ends at the last token."""
    if overlap >= window:
        raise ValueError(f"overlap ({overlap}) must be smaller than window ({window})")
    chunks = []
    step = window - overlap
    for first in range(0, len(spans), step):
        last = min(first + window, len(spans))
        chunks.append(ChunkSpan(spans[first][0], spans[last - 1][1], heading, last - first))
        if last == len(spans):
            break
    return chunks


def _tokens_in(starts: list[int], start: int, end: int) -> tuple[int, int]:
    """Index range of the tokens that start inside [start, end)."""
    return bisect.bisect_left(starts, start), bisect.bisect_left(starts, end)


def paragraph_chunks(
    text: str, spans: list[tuple[int, int]], window: int, overlap: int
) -> list[ChunkSpan]:
    """Sections' paragraphs packed up to `window` tokens, never across a heading; see module."""
    starts = [start for start, _ in spans]
    chunks: list[ChunkSpan] = []
    pending: list[tuple[_Block, int]] = []  # blocks of the chunk being packed, with token counts

    def flush() -> None:
        # A chunk of heading lines alone says nothing; its titles live on in the heading path.
        if pending and not all(block.is_heading for block, _ in pending):
            chunks.append(
                ChunkSpan(
                    pending[0][0].start,
                    pending[-1][0].end,
                    pending[-1][0].heading,
                    sum(count for _, count in pending),
                )
            )
        pending.clear()

    for block in markdown_blocks(text):
        first, last = _tokens_in(starts, block.start, block.end)
        count = last - first
        if count == 0:
            continue
        if block.is_heading:
            flush()
        if count > window:
            flush()
            chunks.extend(token_windows(spans[first:last], window, overlap, block.heading))
            continue
        if sum(n for _, n in pending) + count > window:
            flush()
        pending.append((block, count))
    flush()
    return chunks


def chunk_text(
    text: str,
    strategy: ChunkingStrategy,
    token_spans: TokenSpans,
    window: int,
    overlap: int,
) -> list[ChunkSpan]:
    """The chunks of one passage under `strategy`."""
    spans = token_spans(text)
    if not spans:
        return []
    if strategy == "paragraphs":
        return paragraph_chunks(text, spans, window, overlap)
    if strategy == "tokens":
        windows = token_windows(spans, window, overlap)
        blocks = markdown_blocks(text)
        block_starts = [block.start for block in blocks]

        def heading_at(position: int) -> str:
            index = bisect.bisect_right(block_starts, position) - 1
            return blocks[index].heading if index >= 0 else ""

        return [ChunkSpan(c.start, c.end, heading_at(c.start), c.tokens) for c in windows]
    raise ValueError(f"unknown chunking strategy {strategy!r}; use 'paragraphs' or 'tokens'")


def chunk_records(
    corpus: pd.DataFrame,
    strategy: ChunkingStrategy,
    token_spans: TokenSpans,
    window: int,
    overlap: int,
) -> pd.DataFrame:
    """One row per chunk of every record of `corpus` (columns `CHUNK_COLUMNS`)."""
    rows = []
    for record in corpus.to_dict("records"):
        passage = record_passage(str(record["text"]), record.get("response"))
        source, record_id = str(record["source"]), str(record["record_id"])
        for number, span in enumerate(chunk_text(passage, strategy, token_spans, window, overlap)):
            rows.append(
                {
                    "chunk_id": chunk_id(source, record_id, number),
                    "record_id": record_id,
                    "source": source,
                    "uri": str(record.get("uri") or ""),
                    "chunk_index": number,
                    "heading": span.heading,
                    "char_start": span.start,
                    "char_end": span.end,
                    "tokens": span.tokens,
                    "text": passage[span.start : span.end],
                }
            )
    return pd.DataFrame(rows, columns=CHUNK_COLUMNS)


def text_to_embed(heading: str, text: str) -> str:
    """The chunk as the model reads it: prefixed with its heading path when the chunk does not
    open with its heading, so a section's later paragraphs still say what they are about."""
    if not heading:
        return text
    title = heading.rsplit(" > ", 1)[-1]
    first_line = text.lstrip().split("\n", 1)[0]
    return text if title in first_line else f"{heading}\n\n{text}"


def chunks_not_traceable(chunks: pd.DataFrame, corpus: pd.DataFrame) -> list[str]:
    """Why chunks fail to lead back to their record: a record missing from `corpus`, or a text
    that is not the passage's `[char_start:char_end]`; also repeated chunk ids. Empty if all
    trace."""
    passages = {
        (str(row["source"]), str(row["record_id"])): record_passage(
            str(row["text"]), row.get("response")
        )
        for row in corpus.to_dict("records")
    }
    problems = []
    repeated = chunks["chunk_id"][chunks["chunk_id"].duplicated()].unique().tolist()
    problems += [f"{cid}: chunk id repeated" for cid in repeated]
    for row in chunks.to_dict("records"):
        passage = passages.get((str(row["source"]), str(row["record_id"])))
        if passage is None:
            problems.append(f"{row['chunk_id']}: record not in cleaned_corpus")
        elif passage[int(row["char_start"]) : int(row["char_end"])] != row["text"]:
            problems.append(f"{row['chunk_id']}: text differs from its record's characters")
    return problems
