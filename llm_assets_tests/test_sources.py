from pathlib import Path

from llm_assets.settings import SourceConfig, load_profile
from llm_assets.sources import read_source
from llm_assets.sources.documents import html_to_markdown
from llm_assets.sources.tabular import read_tabular


def _tickets(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "tickets.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_jsonl_bad_lines_are_quarantined_with_file_and_line(tmp_path: Path) -> None:
    path = _tickets(
        tmp_path,
        [
            b'{"id": "A", "body": "Sync fails", "answer": "Restart the client."}',
            b'{"id": "B", "body": "truncated',
            b'{"id": "C", "subject": "no body"}',
            b'{"id": "D", "body": ""}',
            b'["not", "an", "object"]',
            b'{"id": "A", "body": "repeated id"}',
            b'{"id": "E", "body": "caf\xe9"}',
        ],
    )
    source = SourceConfig(
        name="tickets",
        kind="jsonl",
        path=str(path),
        text_field="body",
        id_field="id",
        response_field="answer",
    )
    records = {r.uri: r for r in read_tabular(source, str(path))}
    assert records["tickets.jsonl#L1"].text == "Sync fails"
    assert records["tickets.jsonl#L1"].response == "Restart the client."
    assert records["tickets.jsonl#L2"].read_error == "source.malformed_json"
    assert "tickets.jsonl#L2" in str(records["tickets.jsonl#L2"].error_detail)
    assert records["tickets.jsonl#L3"].read_error == "source.missing_field"
    assert records["tickets.jsonl#L4"].read_error == "source.empty_text"
    assert records["tickets.jsonl#L5"].read_error == "source.not_an_object"
    assert records["tickets.jsonl#L6"].read_error == "source.duplicate_id"
    assert records["tickets.jsonl#L7"].read_error == "source.invalid_utf8"
    assert len(records) == 7


def test_prompt_fields_come_before_the_text(tmp_path: Path) -> None:
    path = _tickets(tmp_path, [b'{"subject": "Login loop", "body": "It keeps asking."}'])
    source = SourceConfig(
        name="t", kind="jsonl", path=str(path), text_field="body", prompt_fields=["subject"]
    )
    (record,) = read_tabular(source, str(path))
    assert record.text == "Login loop\n\nIt keeps asking."
    assert record.record_id == "tickets.jsonl#L1"


def test_html_main_content_keeps_headings_and_drops_boilerplate() -> None:
    html = """<html><head><title>LAN sync</title><script>track()</script></head><body>
    <nav><a href="/">Home</a><a href="/pricing">Pricing</a></nav>
    <main><article><h1>LAN sync</h1><p>LAN sync copies blocks between computers on the same
    network instead of downloading them again from the cloud, which saves bandwidth.</p>
    <h2>Turning it on</h2><p>Open Preferences, then Network, and tick the LAN sync box. Both
    computers must be signed in to the same team and reachable on port 17500.</p></article></main>
    <footer>Copyright 2026 Nimbus Labs. Subscribe to our newsletter.</footer></body></html>"""
    text = html_to_markdown(html) or ""
    assert "Turning it on" in text and "#" in text
    assert "Pricing" not in text and "newsletter" not in text


def test_sample_sources_read_without_losing_records() -> None:
    profile = load_profile(Path(__file__).parent / "profiles" / "tiny.yaml")
    for source in profile.sources:
        frame = read_source(profile, source)
        assert len(frame) > 0
        assert frame["record_id"].is_unique
        assert set(frame["source"]) == {source.name}
