"""PDF and Word documents to text, with the page and heading structure later stages use.

Each extractor takes the file's bytes and returns the text plus `fields`, or the `source.*`
reason and detail that say why the file cannot be read. Parsers raise many kinds of error on
damaged files, so each call into one is guarded: a bad file is quarantined, never a crash.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

# The first bytes of an OLE2 container: a password-protected .docx, or a legacy .doc renamed.
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(frozen=True)
class Extracted:
    """What an extractor found: `text` and `fields`, or a `reason` and `detail`."""

    text: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    detail: str | None = None


def _failed(reason: str, detail: str) -> Extracted:
    return Extracted(reason=reason, detail=detail)


def pdf_text(raw: bytes, shown: str, max_chars: int) -> Extracted:
    """All pages' text joined by blank lines; `fields` has `page_count`, `page_offsets` (where
    each page starts in the text, so a passage can be traced to its page) and the pages that
    had no text. A PDF locked with a password is not opened; one protected only against
    editing (an empty user password) is read."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            try:
                unlocked = bool(reader.decrypt(""))
            except Exception as error:  # e.g. AES without the `cryptography` package
                return _failed("source.encrypted_pdf", f"{shown}: encrypted ({error})")
            if not unlocked:
                return _failed(
                    "source.encrypted_pdf",
                    f"{shown}: needs a password to open; export an unlocked copy",
                )
        pages = list(reader.pages)
        title = reader.metadata.title if reader.metadata else None
    except Exception as error:  # pypdf raises many types on damaged files
        return _failed("source.corrupt_pdf", f"{shown}: {type(error).__name__}: {error}")

    parts: list[str] = []
    offsets: list[int] = []
    empty_pages: list[int] = []
    length = 0
    for number, page in enumerate(pages, start=1):
        try:
            page_text = (page.extract_text() or "").strip()
        except Exception as error:
            return _failed(
                "source.corrupt_pdf", f"{shown}: page {number}: {type(error).__name__}: {error}"
            )
        if not page_text:
            empty_pages.append(number)
        offsets.append(length)
        parts.append(page_text)
        length += len(page_text)
        if length > max_chars:  # stop early: the record is quarantined as too large anyway
            return _failed(
                "source.too_large",
                f"{shown}: over max_record_chars={max_chars} characters by page {number} "
                f"of {len(pages)}",
            )
        length += 2  # the blank line joining pages
    if len(empty_pages) == len(pages):
        return _failed(
            "source.empty_text",
            f"{shown}: no extractable text in {len(pages)} page(s) (a scanned PDF needs OCR first)",
        )
    return Extracted(
        text="\n\n".join(parts),
        fields={
            "title": str(title).strip() if title and str(title).strip() else None,
            "page_count": len(pages),
            "page_offsets": offsets,
            "pages_without_text": empty_pages,
        },
    )


def _docx_paragraph_markdown(paragraph: Any) -> str:
    text = paragraph.text.strip()
    if not text:
        return ""
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    if style == "Title":
        return f"# {text}"
    if style.startswith("Heading "):
        level = style.removeprefix("Heading ").strip()
        depth = min(int(level), 6) if level.isdigit() else 1
        return f"{'#' * depth} {text}"
    if style.startswith("List"):
        return f"- {text}"
    return text


def _docx_table_markdown(table: Any) -> str:
    rows = [
        [" ".join(cell.text.split()).replace("|", "\\|") for cell in row.cells]
        for row in table.rows
    ]
    rows = [row for row in rows if any(row)]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    lines = [f"| {' | '.join(row + [''] * (width - len(row)))} |" for row in rows]
    lines.insert(1, f"|{' --- |' * width}")
    return "\n".join(lines)


def docx_text(raw: bytes, shown: str) -> Extracted:
    """Paragraphs and tables in document order as Markdown: headings (and the Title style)
    become `#` lines, list items `- ` lines, tables Markdown tables."""
    if raw.startswith(OLE2_MAGIC):
        return _failed(
            "source.corrupt_docx",
            f"{shown}: an OLE2 file, not a DOCX package: password-protected, or a legacy .doc; "
            "save it as an unprotected .docx",
        )
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(raw))
        blocks: list[str] = []
        for block in document.iter_inner_content():
            if isinstance(block, Paragraph):
                blocks.append(_docx_paragraph_markdown(block))
            elif isinstance(block, Table):
                blocks.append(_docx_table_markdown(block))
        title = document.core_properties.title
    except Exception as error:  # python-docx raises many types on damaged packages
        return _failed("source.corrupt_docx", f"{shown}: {type(error).__name__}: {error}")
    text = "\n\n".join(block for block in blocks if block)
    if not text.strip():
        return _failed("source.empty_text", f"{shown}: no text content")
    return Extracted(text=text, fields={"title": title.strip() if title else None})
