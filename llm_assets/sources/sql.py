"""Rows of a SQL query (any database SQLAlchemy reaches) to raw records.

The URL may hold `${ENV_VAR}` placeholders, filled from the environment when the source is read,
so a password never has to be written in a profile. No URI, record or error carries it.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import quote

from llm_assets.settings import SourceConfig
from llm_assets.sources.records import RawRecord, quarantined
from llm_assets.sources.tabular import row_to_record

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# scheme://user:password@ — the part whose placeholders are percent-encoded when filled in.
USERINFO = re.compile(r"^[A-Za-z0-9+_.-]+://([^/?#]*)@")


class SqlSourceError(RuntimeError):
    """A sql source that cannot be read at all: bad URL, unreachable database, failing query."""


def expand_url(url: str, source_name: str) -> str:
    """`url` with each ${ENV_VAR} replaced by its value. Values in the user:password part are
    percent-encoded, so a password may hold `@`, `/` or `:`; a placeholder standing for the
    whole URL is used as it is."""
    userinfo = USERINFO.match(url)
    userinfo_end = userinfo.end(1) if userinfo else -1

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(name)
        if value is None:
            raise SqlSourceError(
                f"source '{source_name}': url uses ${{{name}}} but the environment variable "
                f"{name} is not set; set it where the pipeline runs"
            )
        return quote(value, safe="") if match.end() <= userinfo_end else value

    return PLACEHOLDER.sub(value_of, url)


def _hide(message: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message


def _reason(error: BaseException) -> str:
    """The database's own message where there is one, without SQLAlchemy's SQL echo."""
    original = getattr(error, "orig", None)
    return f"{type(original or error).__name__}: {original or error}".strip()


def _plain_value(column: str, value: Any, uri: str) -> tuple[Any, str | None]:
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8"), None
        except UnicodeDecodeError as error:
            return None, f"{uri}: column '{column}' is not UTF-8 at byte {error.start}"
    return value, None


def row_record(
    row: dict[str, Any], source: SourceConfig, uri: str, seen_ids: set[str]
) -> RawRecord:
    """One result row as a record; byte columns are decoded as UTF-8 or the row quarantined."""
    plain: dict[str, Any] = {}
    for column, value in row.items():
        plain[column], problem = _plain_value(column, value, uri)
        if problem:
            return quarantined(source.name, uri, "source.invalid_utf8", problem)
    return row_to_record(plain, source, uri, seen_ids)


def read_sql(source: SourceConfig) -> list[RawRecord]:
    """Every row `source.query` returns, as a record with uri `sql:<source>#row<N>` (N from 1).
    Raises SqlSourceError, naming the source and the cause, if the database cannot be reached
    or the query fails: then there are no records to account for."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    if not (source.url and source.query):  # SourceConfig requires both for kind sql
        raise SqlSourceError(f"source '{source.name}': kind sql needs `url` and `query`")
    try:
        url = make_url(expand_url(source.url, source.name))
    except SqlSourceError:
        raise
    except Exception as error:  # ArgumentError, or ValueError for a port that is not a number
        filled_in = [os.environ.get(name, "") for name in PLACEHOLDER.findall(source.url)]
        raise SqlSourceError(
            f"source '{source.name}': url {source.redacted_url!r} is not a valid SQLAlchemy URL "
            f"({_hide(str(error), filled_in)}); see "
            "https://docs.sqlalchemy.org/en/20/core/engines.html#database-urls"
        ) from None
    password = str(url.password or "")
    secrets = [password, quote(password, safe="")]
    shown = url.render_as_string(hide_password=True)

    def failure(what: str, error: BaseException, fix: str) -> SqlSourceError:
        return SqlSourceError(
            f"source '{source.name}': {what} {shown} failed: {_hide(_reason(error), secrets)}; "
            f"{fix}"
        )

    try:
        engine = create_engine(url)
    except ImportError as error:
        raise failure(
            "loading the database driver for",
            error,
            f"install the driver for '{url.drivername}' in the project's environment",
        ) from None
    except Exception as error:
        raise failure("opening", error, "check `url` in the profile") from None
    records: list[RawRecord] = []
    seen_ids: set[str] = set()
    try:
        try:
            connection = engine.connect()
        except Exception as error:
            raise failure(
                "connecting to", error, "check `url`, the credentials and that it is reachable"
            ) from None
        with connection:
            try:
                # Sent as written: no bind-parameter parsing of `:name`, so casts like ::text work.
                result = connection.execution_options(stream_results=True).exec_driver_sql(
                    source.query
                )
                if not result.returns_rows:
                    raise SqlSourceError(
                        f"source '{source.name}': query returned no rows to read (is it a "
                        "SELECT?); fix `query` in the profile"
                    )
                columns = list(result.keys())
                repeated = sorted({column for column in columns if columns.count(column) > 1})
                if repeated:
                    raise SqlSourceError(
                        f"source '{source.name}': query returns column(s) {repeated} more than "
                        "once; give each an alias (AS name) in `query`"
                    )
                for number, row in enumerate(result.mappings(), start=1):
                    uri = f"sql:{source.name}#row{number}"
                    records.append(row_record(dict(row), source, uri, seen_ids))
            except SqlSourceError:
                raise
            except Exception as error:
                raise failure("running the query on", error, "fix `query` in the profile") from None
    finally:
        engine.dispose()
    return records
