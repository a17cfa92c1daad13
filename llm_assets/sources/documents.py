"""Document folders: Markdown, HTML and plain text, one record per file."""

from __future__ import annotations

import re
from pathlib import Path

from llm_assets.settings import SourceConfig
from llm_assets.sources.records import RawRecord, display_path, matching_files, quarantined

DOCUMENT_SUFFIXES = {".md", ".markdown", ".txt", ".text", ".html", ".htm"}


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


def read_document(path: Path, shown: str, source: SourceConfig) -> RawRecord:
    try:
        raw = path.read_bytes()
    except OSError as error:
        return quarantined(source.name, shown, "source.unreadable_file", f"{shown}: {error}")
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return quarantined(
            source.name,
            shown,
            "source.invalid_utf8",
            f"{shown}: not UTF-8 at byte {error.start} ({error.reason})",
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
    if not text.strip():
        return quarantined(source.name, shown, "source.empty_text", f"{shown}: no text content")
    if len(text) > source.max_record_chars:
        return quarantined(
            source.name,
            shown,
            "source.too_large",
            f"{shown}: {len(text)} characters > max_record_chars={source.max_record_chars}",
        )
    return RawRecord(
        record_id=shown,
        source=source.name,
        uri=shown,
        text=text,
        fields={"title": title or path.stem, "format": suffix.lstrip(".")},
    )


def read_documents(source: SourceConfig, pattern: str) -> list[RawRecord]:
    """One record per matching document; other file types are quarantined, not skipped."""
    records = []
    for path in matching_files(pattern):
        shown = display_path(path, pattern)
        if path.suffix.lower() not in DOCUMENT_SUFFIXES:
            records.append(
                quarantined(
                    source.name,
                    shown,
                    "source.unsupported_format",
                    f"{shown}: '{path.suffix}' is not one of {sorted(DOCUMENT_SUFFIXES)}",
                )
            )
            continue
        records.append(read_document(path, shown, source))
    return records
