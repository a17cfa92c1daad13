"""Document folders: Markdown, HTML, plain text, PDF and Word, one record per file."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from llm_assets.settings import SourceConfig
from llm_assets.sources.office_documents import Extracted, docx_text, pdf_text
from llm_assets.sources.records import RawRecord, display_path, matching_files, quarantined

TEXT_SUFFIXES = {".md", ".markdown", ".txt", ".text", ".html", ".htm"}
DOCUMENT_SUFFIXES = TEXT_SUFFIXES | {".pdf", ".docx"}


PARALLEL_MIN_FILES = 16


def html_to_markdown(html: str) -> str | None:
    """Main content of a web page as Markdown: navigation, banners and footers removed,
    headings kept as `#` lines so later stages can split on them."""
    import trafilatura

    return trafilatura.extract(
        html,
        output_format="markdown",
        include_tables=True,
        include_links=False,
        include_comments=False,
        favor_precision=True,
        with_metadata=False,
    )


def html_title(html: str) -> str | None:
    match = re.search(r"<title[^>]*>(.*?)</title>", html, flags=re.IGNORECASE | re.DOTALL)
    return re.sub(r"\s+", " ", match.group(1)).strip() if match else None


def markdown_title(text: str) -> str | None:
    match = re.search(r"^#\s+(.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else None


def text_document(raw: bytes, path: Path, shown: str) -> Extracted:
    """Markdown, HTML (main content, as Markdown) or plain text, decoded as UTF-8."""
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return Extracted(
            reason="source.invalid_utf8",
            detail=f"{shown}: not UTF-8 at byte {error.start} ({error.reason})",
        )
    suffix = path.suffix.lower()
    title: str | None
    if suffix in {".html", ".htm"}:
        title = html_title(content)
        text = html_to_markdown(content) or ""
        if title and not markdown_title(text):
            text = f"# {title}\n\n{text}"
    else:
        text = content
        title = markdown_title(text) if suffix in {".md", ".markdown"} else path.stem
    return Extracted(text=text, fields={"title": title})


def read_document(path: Path, shown: str, source: SourceConfig) -> RawRecord:
    try:
        raw = path.read_bytes()
    except OSError as error:
        return quarantined(source.name, shown, "source.unreadable_file", f"{shown}: {error}")
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        extracted = pdf_text(raw, shown, source.max_record_chars)
    elif suffix == ".docx":
        extracted = docx_text(raw, shown)
    else:
        extracted = text_document(raw, path, shown)
    if extracted.reason:
        return quarantined(source.name, shown, extracted.reason, extracted.detail or shown)
    text = extracted.text
    if not text.strip():
        return quarantined(source.name, shown, "source.empty_text", f"{shown}: no text content")
    if len(text) > source.max_record_chars:
        return quarantined(
            source.name,
            shown,
            "source.too_large",
            f"{shown}: {len(text)} characters > max_record_chars={source.max_record_chars}",
        )
    title = extracted.fields.get("title") or markdown_title(text) or path.stem
    return RawRecord(
        record_id=shown,
        source=source.name,
        uri=shown,
        text=text,
        fields={**extracted.fields, "title": title, "format": suffix.lstrip(".")},
    )


def document_record(path: Path, shown: str, source: SourceConfig) -> RawRecord:
    """The record of one matching file; other file types are quarantined, not skipped."""
    if path.suffix.lower() not in DOCUMENT_SUFFIXES:
        return quarantined(
            source.name,
            shown,
            "source.unsupported_format",
            f"{shown}: '{path.suffix}' is not one of {sorted(DOCUMENT_SUFFIXES)}",
        )
    return read_document(path, shown, source)


def iter_documents(
    source: SourceConfig, pattern: str, workers: int | None = None
) -> Iterator[RawRecord]:
    """One record per matching document, in file order. Extraction (Trafilatura, pypdf) is most
    of the cost, so a folder of PARALLEL_MIN_FILES or more is read by `workers` processes
    (default every core); a small one in this process, where starting workers would cost more."""
    paths = matching_files(pattern)
    shown = [display_path(path, pattern) for path in paths]
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(paths) >= PARALLEL_MIN_FILES:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            sources = [source] * len(paths)
            yield from pool.map(document_record, paths, shown, sources, chunksize=4)
        return
    for path, name in zip(paths, shown, strict=True):
        yield document_record(path, name, source)


def read_documents(source: SourceConfig, pattern: str) -> list[RawRecord]:
    return list(iter_documents(source, pattern))
