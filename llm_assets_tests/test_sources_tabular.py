"""`template` and `response_template` on jsonl and csv sources."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from llm_assets.settings import SourceConfig
from llm_assets.sources.records import RawRecord
from llm_assets.sources.tabular import read_tabular


def read_rows(tmp_path: Path, rows: list[dict[str, object]], **settings: str) -> list[RawRecord]:
    path = tmp_path / "tickets.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    source = SourceConfig(name="tickets", kind="jsonl", path=str(path), **settings)
    return read_tabular(source, str(path))


def test_template_forms_text_and_response_from_named_fields(tmp_path: Path) -> None:
    (record,) = read_rows(
        tmp_path,
        [
            {
                "id": 7,
                "subject": "Login loop",
                "body": "It keeps asking.",
                "fix": "Clear cookies.",
                "agent": "kim",
                "minutes": 12.5,
            }
        ],
        template="{subject}\n\n{body}",
        response_template="{fix} (took {minutes:.0f} min)",
        id_field="id",
    )
    assert record.read_error is None
    assert record.text == "Login loop\n\nIt keeps asking."
    assert record.response == "Clear cookies. (took 12 min)"
    assert record.record_id == "7"
    assert record.fields == {"agent": "kim"}  # fields the templates used are not repeated


def test_missing_template_field_is_quarantined_naming_the_field(tmp_path: Path) -> None:
    records = read_rows(
        tmp_path,
        [
            {"subject": "No body here"},
            {"subject": "Has body", "body": "but no fix"},
            {"subject": None, "body": None},
            {"subject": "Bad number", "body": "x", "fix": "y", "minutes": "ten"},
        ],
        template="{subject}\n\n{body}",
        response_template="{fix} ({minutes:.0f} min)",
    )
    assert [record.read_error for record in records] == [
        "source.missing_field",
        "source.missing_field",
        "source.empty_text",
        "source.template_error",
    ]
    assert "'body' (used by template)" in str(records[0].error_detail)
    assert "'fix' (used by response_template)" in str(records[1].error_detail)
    assert "tickets.jsonl#L1" in str(records[0].error_detail)


def test_csv_template_reads_columns_with_spaces(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Ticket Subject,Body,Resolution\nPrinter jam,Paper stuck,Open tray B\n")
    source = SourceConfig(
        name="export",
        kind="csv",
        path=str(path),
        template="Subject: {Ticket Subject}\n{Body}",
        response_field="Resolution",
    )
    (record,) = read_tabular(source, str(path))
    assert record.text == "Subject: Printer jam\nPaper stuck"
    assert record.response == "Open tray B"
    assert record.uri == "export.csv#L2"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"template": "{subject"}, "expected '}'"),
        ({"template": "{0} and {}"}, "not a field name"),
        ({"template": "{row.__class__}"}, "not a field name"),
        ({"template": "no fields"}, "names no field"),
        ({"template": "{body}", "text_field": "body"}, "template replaces text_field"),
        ({"response_template": "{fix}", "response_field": "fix"}, "replaces response_field"),
    ],
)
def test_unusable_templates_are_refused_in_the_profile(
    settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        SourceConfig(name="tickets", kind="jsonl", path="t.jsonl", **settings)  # type: ignore[arg-type]
