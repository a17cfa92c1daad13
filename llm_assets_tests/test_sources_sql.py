"""The `sql` source kind, on a real SQLite database in a temporary folder."""

import sqlite3
from pathlib import Path

import pytest

from llm_assets.settings import Profile, SourceConfig
from llm_assets.sources import read_source
from llm_assets.sources.sql import SqlSourceError, expand_url, read_sql


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "support.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE tickets (id TEXT, subject TEXT, body TEXT, resolution TEXT, raw BLOB)"
        )
        connection.executemany(
            "INSERT INTO tickets VALUES (?, ?, ?, ?, ?)",
            [
                ("T1", "Login loop", "It keeps asking.", "Clear cookies.", b"ok"),
                ("T2", "Slow sync", "", "Turn on LAN sync.", None),
                ("T3", "Bad bytes", "Attachment", None, b"\xff\xfe"),
                ("T1", "Repeat", "Same id again", None, None),
            ],
        )
    monkeypatch.setenv("SUPPORT_DB_DIR", str(tmp_path))
    return path


def sql_source(
    query: str = "SELECT * FROM tickets ORDER BY rowid", **settings: str
) -> SourceConfig:
    return SourceConfig(
        name="tickets",
        kind="sql",
        url="sqlite:///${SUPPORT_DB_DIR}/support.db",
        query=query,
        **settings,
    )


def test_each_row_is_one_record_and_bad_rows_are_quarantined(database: Path) -> None:
    records = read_sql(sql_source(id_field="id", text_field="body", response_field="resolution"))
    assert [record.uri for record in records] == [f"sql:tickets#row{n}" for n in (1, 2, 3, 4)]
    first = records[0]
    assert (first.record_id, first.text, first.response) == (
        "T1",
        "It keeps asking.",
        "Clear cookies.",
    )
    assert first.fields == {"subject": "Login loop", "raw": "ok"}
    assert [record.read_error for record in records] == [
        None,
        "source.empty_text",
        "source.invalid_utf8",
        "source.duplicate_id",
    ]
    assert "sql:tickets#row3: column 'raw'" in str(records[2].error_detail)


def test_template_over_columns(database: Path) -> None:
    source = sql_source(
        "SELECT id, subject, resolution FROM tickets WHERE resolution IS NOT NULL",
        template="{subject} ({id})",
        response_template="{resolution}",
    )
    frame = read_source(Profile(sources=[source]), source)
    assert list(frame["text"]) == ["Login loop (T1)", "Slow sync (T2)"]
    assert list(frame["response"]) == ["Clear cookies.", "Turn on LAN sync."]


def test_password_placeholder_is_encoded_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "p@ss/w:rd")
    from sqlalchemy.engine import make_url

    url = make_url(expand_url("postgresql://app:${DB_PASSWORD}@127.0.0.1:9/support", "t"))
    assert url.password == "p@ss/w:rd" and url.host == "127.0.0.1"
    source = SourceConfig(
        name="tickets",
        kind="sql",
        url="postgresql://app:${DB_PASSWORD}@127.0.0.1:9/support",
        query="SELECT 1",
    )
    with pytest.raises(SqlSourceError) as error:
        read_sql(source)  # no driver installed, or nothing listening on port 9
    message = str(error.value)
    assert "source 'tickets'" in message and "app:***@127.0.0.1:9/support" in message
    assert "p@ss" not in message and "p%40ss" not in message


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT * FROM missing_table", "no such table: missing_table"),
        ("SELECT id, id FROM tickets", "more than once"),
        ("CREATE TABLE t (x INT)", "no rows to read"),
    ],
)
def test_failing_query_names_the_source_and_the_reason(
    database: Path, query: str, message: str
) -> None:
    with pytest.raises(SqlSourceError, match=message) as error:
        read_sql(sql_source(query))
    assert "source 'tickets'" in str(error.value)


def test_unset_variable_and_unreachable_database_are_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SUPPORT_DB_DIR", raising=False)
    with pytest.raises(SqlSourceError, match="SUPPORT_DB_DIR is not set"):
        read_sql(sql_source())
    monkeypatch.setenv("SUPPORT_DB_DIR", str(tmp_path / "no" / "such" / "folder"))
    with pytest.raises(SqlSourceError, match="connecting to sqlite:///.*unable to open"):
        read_sql(sql_source())


def test_sql_settings_are_checked_in_the_profile() -> None:
    with pytest.raises(ValueError, match="kind sql needs query"):
        SourceConfig(name="t", kind="sql", url="sqlite:///x.db")
    with pytest.raises(ValueError, match="not `path`"):
        SourceConfig(name="t", kind="sql", url="sqlite:///x.db", query="SELECT 1", path="x")
    with pytest.raises(ValueError, match="url holds a password"):
        SourceConfig(name="t", kind="sql", url="postgresql://app:hunter2@db/x", query="SELECT 1")
    source = SourceConfig(name="t", kind="sql", url="postgresql://app:${PW}@db/x", query="q")
    assert Profile(sources=[source]).source_glob(source) == "postgresql://app:***@db/x"
