"""Pairs from documents that carry no answers: section Q/A, a document summary and passage
continuation, each built from the document's own `#`-`###` sections and worded by templates
from conf."""

from __future__ import annotations

import re

from llm_assets.settings import DocumentTemplates

# The `task` of pairs built from a document's own text: the document is their knowledge.
DOCUMENT_PAIR_TASKS = ("doc_section", "doc_summary", "doc_continuation")

_HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$", flags=re.MULTILINE)
_FENCE = re.compile(r"^\s*(```|~~~)")
# A paragraph that is a table, list, quote, code or markup is no summary sentence.
_NOT_PROSE = re.compile(r"^\s*(\||```|~~~|[-*+]\s|\d+[.)]\s|>|<|!\[)")
_SENTENCE = re.compile(r"(.+?[.!?])(?=\s+[A-Z0-9\"'(*`_]|\s*$)", flags=re.DOTALL)


def markdown_sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) for each `#`–`###` section of a Markdown text, in order."""
    matches = list(_HEADING.finditer(text))
    sections = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        sections.append((match.group(2).strip(), body))
    return sections


def paragraphs(body: str) -> list[str]:
    """Blank-line separated blocks of a section; a fenced code block stays whole even when it
    holds blank lines, so a passage never ends inside code."""
    blocks: list[list[str]] = [[]]
    in_fence = False
    for line in body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if blocks[-1]:
                blocks.append([])
            continue
        blocks[-1].append(line)
    return ["\n".join(block).strip() for block in blocks if block]


def lead_sentence(body: str) -> str | None:
    """The first sentence of the first prose paragraph, hard line breaks joined; None if the
    section opens with no prose sentence (only a table, a list or code)."""
    for paragraph in paragraphs(body):
        if _NOT_PROSE.match(paragraph):
            continue
        match = _SENTENCE.match(" ".join(paragraph.split()))
        if match:
            return match.group(1)
    return None


def split_for_continuation(body: str, min_part_chars: int) -> tuple[str, str] | None:
    """(passage, continuation): the section cut at the paragraph boundary nearest its middle,
    both parts at least `min_part_chars` long; None if no boundary allows that."""
    blocks = paragraphs(body)
    best: tuple[int, int] | None = None
    total = sum(len(block) for block in blocks)
    seen = 0
    for cut in range(1, len(blocks)):
        seen += len(blocks[cut - 1])
        if seen >= min_part_chars and total - seen >= min_part_chars:
            distance = abs(total / 2 - seen)
            if best is None or distance < best[0]:
                best = (int(distance), cut)
    if best is None:
        return None
    cut = best[1]
    return "\n\n".join(blocks[:cut]), "\n\n".join(blocks[cut:])


def document_summary(title: str, sections: list[tuple[str, str]]) -> str | None:
    """An extractive summary: the lead sentence of the introduction, then one line per section
    with its heading and lead sentence. None with fewer than two summarized sections."""
    intro = ""
    lines: list[str] = []
    for heading, body in sections:
        sentence = lead_sentence(body)
        if sentence is None:
            continue
        if heading == title and not intro and not lines:
            intro = sentence
        else:
            lines.append(f"- {heading}: {sentence}")
    if len(lines) < 2:
        return None
    return "\n".join(([intro, ""] if intro else []) + lines)


def document_pairs(title: str, text: str, templates: DocumentTemplates) -> list[dict[str, str]]:
    """The pairs `templates.tasks` ask for, each with `task`, `section`, `instruction`, `input`
    and `output`; sections shorter than `min_section_chars` are skipped."""
    sections = markdown_sections(text)
    long_enough = [(h, b) for h, b in sections if len(b) >= templates.min_section_chars]
    pairs: list[dict[str, str]] = []
    for task in templates.tasks:
        if task == "summary":
            summary = document_summary(title, sections)
            if summary:
                instruction = templates.summary.format(title=title)
                pairs.append(_pair(DOCUMENT_PAIR_TASKS[1], "", instruction, summary))
            continue
        for heading, body in long_enough:
            if task == "section_qa":
                template = templates.overview if heading == title else templates.section_qa
                instruction = template.format(title=title, heading=heading)
                pairs.append(_pair(DOCUMENT_PAIR_TASKS[0], heading, instruction, body))
            elif task == "continuation":
                parts = split_for_continuation(body, templates.min_section_chars // 2)
                if parts:
                    instruction = templates.continuation.format(title=title, heading=heading)
                    pairs.append(
                        _pair(DOCUMENT_PAIR_TASKS[2], heading, instruction, parts[1], parts[0])
                    )
    return pairs


def _pair(
    task: str, section: str, instruction: str, output: str, extra_input: str = ""
) -> dict[str, str]:
    return {
        "task": task,
        "section": section,
        "instruction": instruction.strip(),
        "input": extra_input.strip(),
        "output": output.strip(),
    }
