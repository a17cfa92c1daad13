import re

import pandas as pd
import pytest

from llm_assets.rag.chunking import (
    chunk_records,
    chunk_text,
    chunks_not_traceable,
    markdown_blocks,
    record_passage,
    text_to_embed,
    token_windows,
)


def words(text: str) -> list[tuple[int, int]]:
    """Whitespace-separated words as tokens: counts a reader can check by eye."""
    return [match.span() for match in re.finditer(r"\S+", text)]


GUIDE = """# Sync guide

Aurora keeps folders in sync.

## Install

Download the package.

Run the installer.

## Conflicts

### Renames
one two three four five six seven eight nine ten eleven twelve
"""


def test_token_windows_overlap_and_end_at_the_last_token() -> None:
    text = "a b c d e f g h i j"
    windows = token_windows(words(text), window=4, overlap=1)
    assert [text[w.start : w.end] for w in windows] == ["a b c d", "d e f g", "g h i j"]
    assert [w.tokens for w in windows] == [4, 4, 4]


def test_token_windows_refuse_an_overlap_as_large_as_the_window() -> None:
    with pytest.raises(ValueError, match="overlap"):
        token_windows(words("a b c"), window=2, overlap=2)


def test_paragraph_chunks_pack_paragraphs_and_never_cross_a_heading() -> None:
    chunks = chunk_text(GUIDE, "paragraphs", words, window=8, overlap=2)
    texts = [GUIDE[c.start : c.end] for c in chunks]
    assert texts[0] == "# Sync guide\n\nAurora keeps folders in sync."
    # Both install paragraphs fit 8 words with their heading, so they share one chunk.
    assert texts[1] == "## Install\n\nDownload the package.\n\nRun the installer."
    assert chunks[1].heading == "Sync guide > Install"
    # Heading lines alone make no chunk (their titles stay in the heading path), and the long
    # paragraph falls back to windows of 8 words sharing 2.
    assert all("## Conflicts" not in text and "### Renames" not in text for text in texts)
    renames = [c for c in chunks if c.heading == "Sync guide > Conflicts > Renames"]
    assert [GUIDE[c.start : c.end] for c in renames] == [
        "one two three four five six seven eight",
        "seven eight nine ten eleven twelve",
    ]
    assert all(c.tokens <= 8 for c in chunks)


def test_hash_lines_inside_code_fences_are_not_headings() -> None:
    text = "# Setup\n\n```\n# not a heading\n```\n\nAfter the code."
    headings = {block.heading for block in markdown_blocks(text)}
    assert headings == {"Setup"}


def test_token_strategy_windows_carry_the_heading_they_start_under() -> None:
    chunks = chunk_text(GUIDE, "tokens", words, window=10, overlap=0)
    assert chunks[0].heading == "Sync guide"
    assert chunks[-1].heading == "Sync guide > Conflicts > Renames"
    assert sum(c.tokens for c in chunks) == len(words(GUIDE))


def test_chunk_records_ids_lead_back_to_the_record_characters() -> None:
    corpus = pd.DataFrame(
        [
            {
                "record_id": "T-1",
                "source": "tickets",
                "text": "Cannot log in after SSO change",
                "response": "Use an SSO exception admin.",
                "uri": "tickets.jsonl#L1",
            },
            {"record_id": "guide.md", "source": "docs", "text": GUIDE, "response": None},
        ]
    )
    chunks = chunk_records(corpus, "paragraphs", words, window=8, overlap=2)
    ticket = chunks[chunks["source"] == "tickets"]
    assert ticket["chunk_id"].tolist() == ["tickets/T-1#0", "tickets/T-1#1"]
    # The answer is part of what is retrieved: it is the knowledge a ticket holds.
    assert ticket["text"].tolist()[-1] == "Use an SSO exception admin."
    assert ticket["uri"].tolist()[0] == "tickets.jsonl#L1"
    docs = chunks[chunks["source"] == "docs"]
    assert docs["chunk_index"].tolist() == list(range(len(docs)))
    assert chunks_not_traceable(chunks, corpus) == []


def test_chunks_not_traceable_names_edited_and_orphan_chunks() -> None:
    corpus = pd.DataFrame([{"record_id": "1", "source": "s", "text": "alpha beta gamma"}])
    chunks = chunk_records(corpus, "tokens", words, window=2, overlap=0)
    edited = chunks.assign(text=["alpha BETA", "gamma"])
    orphan = chunks.assign(record_id="2")
    repeated = pd.concat([chunks, chunks.head(1)])
    assert chunks_not_traceable(edited, corpus) == [
        "s/1#0: text differs from its record's characters"
    ]
    assert chunks_not_traceable(orphan, corpus)[0] == "s/1#0: record not in cleaned_corpus"
    assert chunks_not_traceable(repeated, corpus) == ["s/1#0: chunk id repeated"]


def test_record_passage_and_text_to_embed() -> None:
    assert record_passage("question", "  answer ") == "question\n\nanswer"
    assert record_passage("question", None) == "question"
    assert text_to_embed("Guide > Install", "## Install\n\nDownload.") == "## Install\n\nDownload."
    assert text_to_embed("Guide > Install", "Run it.") == "Guide > Install\n\nRun it."
    assert text_to_embed("", "Run it.") == "Run it."
