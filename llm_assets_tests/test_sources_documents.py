"""PDF and Word documents in a `documents` source: one record per file, or one quarantined."""

import io
import json
from pathlib import Path

import pytest

from llm_assets.settings import Profile, SourceConfig
from llm_assets.sources import read_source
from llm_assets.sources.documents import PARALLEL_MIN_FILES, iter_documents, read_documents
from llm_assets.sources.records import RawRecord


def make_pdf(pages: list[str], password: str | None = None, title: str | None = None) -> bytes:
    """A PDF whose pages hold the given lines of text (an empty string: a page without text)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    for text in pages:
        page = writer.add_blank_page(width=612, height=792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        operators = "".join(
            f"BT /F1 12 Tf 72 {720 - 20 * number} Td ({line}) Tj ET\n"
            for number, line in enumerate(text.splitlines())
        )
        content = DecodedStreamObject()
        content.set_data(operators.encode())
        page.replace_contents(content)
    if title:
        writer.add_metadata({"/Title": title})
    if password:
        writer.encrypt(password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Sync guide", level=0)
    document.add_paragraph("LAN sync copies blocks between computers on one network.")
    document.add_heading("Turning it on", level=2)
    document.add_paragraph("Open Preferences.", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Port", "Protocol"
    table.cell(1, 0).text, table.cell(1, 1).text = "17500", "UDP"
    document.save(str(path))


def read_folder(folder: Path, **settings: int) -> dict[str, RawRecord]:
    pattern = str(folder / "*")
    source = SourceConfig(name="docs", kind="documents", path=pattern, **settings)
    return {record.uri: record for record in read_documents(source, pattern)}


def test_pdf_pages_are_joined_with_page_offsets(tmp_path: Path) -> None:
    (tmp_path / "guide.pdf").write_bytes(
        make_pdf(["LAN sync\nsaves bandwidth", "", "Port 17500"], title="Sync guide")
    )
    record = read_folder(tmp_path)["guide.pdf"]
    assert record.read_error is None
    assert record.text is not None
    assert "LAN sync" in record.text and "Port 17500" in record.text
    fields = record.fields
    assert fields["format"] == "pdf" and fields["title"] == "Sync guide"
    assert fields["page_count"] == 3 and fields["pages_without_text"] == [2]
    third_page = record.text[fields["page_offsets"][2] :]
    assert third_page.startswith("Port 17500")


def test_unreadable_pdfs_are_quarantined_with_their_reason(tmp_path: Path) -> None:
    (tmp_path / "locked.pdf").write_bytes(make_pdf(["secret plans"], password="hunter2"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog garbage")
    (tmp_path / "scanned.pdf").write_bytes(make_pdf(["", ""]))
    records = read_folder(tmp_path)
    assert records["locked.pdf"].read_error == "source.encrypted_pdf"
    assert records["broken.pdf"].read_error == "source.corrupt_pdf"
    assert records["scanned.pdf"].read_error == "source.empty_text"
    assert "2 page(s)" in str(records["scanned.pdf"].error_detail)
    for uri, record in records.items():
        assert uri in str(record.error_detail)


def test_pdf_locked_only_against_editing_is_read(tmp_path: Path) -> None:
    (tmp_path / "handbook.pdf").write_bytes(make_pdf(["Open to all readers"], password=""))
    record = read_folder(tmp_path)["handbook.pdf"]
    assert record.read_error is None
    assert record.text == "Open to all readers"


def test_pdf_over_max_record_chars_is_quarantined(tmp_path: Path) -> None:
    (tmp_path / "long.pdf").write_bytes(make_pdf(["a" * 40, "b" * 40]))
    record = read_folder(tmp_path, max_record_chars=50)["long.pdf"]
    assert record.read_error == "source.too_large"
    assert "page 2 of 2" in str(record.error_detail)


def test_docx_headings_become_markdown(tmp_path: Path) -> None:
    make_docx(tmp_path / "guide.docx")
    record = read_folder(tmp_path)["guide.docx"]
    assert record.read_error is None
    assert record.text is not None
    lines = record.text.split("\n\n")
    assert lines[:3] == [
        "# Sync guide",
        "LAN sync copies blocks between computers on one network.",
        "## Turning it on",
    ]
    assert "- Open Preferences." in lines
    assert "| 17500 | UDP |" in record.text
    assert record.fields["title"] == "Sync guide" and record.fields["format"] == "docx"


@pytest.mark.parametrize(
    "content", [b"not a zip at all", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64]
)
def test_damaged_or_protected_docx_is_quarantined(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "memo.docx").write_bytes(content)
    record = read_folder(tmp_path)["memo.docx"]
    assert record.read_error == "source.corrupt_docx"
    assert "memo.docx" in str(record.error_detail)


def test_every_file_of_a_mixed_folder_is_one_row(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\nAlpha.\n")
    (tmp_path / "b.pdf").write_bytes(make_pdf(["Bravo"]))
    (tmp_path / "c.pdf").write_bytes(b"truncated")
    make_docx(tmp_path / "d.docx")
    (tmp_path / "e.xlsx").write_bytes(b"PK")
    profile = Profile(sources=[SourceConfig(name="docs", kind="documents", path="*")])
    frame = read_source(profile.model_copy(update={"base_dir": tmp_path}), profile.sources[0])
    assert list(frame["uri"]) == ["a.md", "b.pdf", "c.pdf", "d.docx", "e.xlsx"]
    assert list(frame["read_error"].fillna("")) == [
        "",
        "",
        "source.corrupt_pdf",
        "",
        "source.unsupported_format",
    ]
    assert json.loads(frame["fields"][1])["page_count"] == 1


def test_a_large_folder_is_read_by_worker_processes_in_file_order(tmp_path: Path) -> None:
    for number in range(PARALLEL_MIN_FILES + 4):
        (tmp_path / f"page-{number:02d}.md").write_text(
            f"# Page {number}\n\nBody of page {number}."
        )
    (tmp_path / "notes.xyz").write_text("not a document")
    source = SourceConfig(name="docs", kind="documents", path=str(tmp_path / "*"))
    pattern = str(tmp_path / "*")
    in_workers = list(iter_documents(source, pattern, workers=2))
    in_process = list(iter_documents(source, pattern, workers=1))
    assert in_workers == in_process
    assert [record.uri for record in in_workers][:2] == ["notes.xyz", "page-00.md"]
    assert in_workers[0].read_error == "source.unsupported_format"
