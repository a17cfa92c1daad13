"""The `sources:` list of a profile (one entry per source) and its `feedback:` section: what
is read, and how served exchanges come back as records."""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from llm_assets.config_base import StrictModel

SourceKind = Literal["jsonl", "csv", "documents", "instructions", "sql", "git"]


class SourceConfig(StrictModel):
    # Kinds whose `path` is a glob of input files, and the keys only some kinds use.
    FILE_KINDS: ClassVar[tuple[str, ...]] = ("jsonl", "csv", "documents", "instructions")
    KIND_SPECIFIC_KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "template": ("jsonl", "csv", "sql"),
        "response_template": ("jsonl", "csv", "sql"),
        "url": ("sql",),
        "query": ("sql",),
        "include": ("git",),
        "exclude": ("git",),
    }

    name: Annotated[
        str, Field(pattern=r"^[a-z][a-z0-9_]*$", description="asset suffix: raw_<name>")
    ]
    kind: SourceKind
    path: str | None = Field(
        None,
        description="files: a glob (jsonl, csv, documents, instructions); git: the repository "
        "folder; absolute or relative to the profile file; not used by sql",
    )
    text_field: str = Field("text", description="field holding the text (jsonl/csv/sql)")
    id_field: str | None = Field(None, description="field whose value becomes record_id")
    response_field: str | None = Field(
        None, description="field holding the answer to the text, e.g. a ticket's resolution"
    )
    prompt_fields: list[str] = Field(
        default_factory=list,
        description="fields put before text_field to form the prompt, e.g. [subject]",
    )
    template: str | None = Field(
        None,
        description="the text as a str.format template over a row's fields, e.g. "
        "'{subject}\\n\\n{body}' (jsonl/csv/sql); replaces text_field and prompt_fields",
    )
    response_template: str | None = Field(
        None,
        description="the answer as a str.format template over a row's fields (jsonl/csv/sql); "
        "replaces response_field",
    )
    url: str | None = Field(
        None,
        description="SQLAlchemy database URL (sql); ${ENV_VAR} placeholders are filled from the "
        "environment, so passwords stay out of the profile",
    )
    query: str | None = Field(None, description="SQL query whose rows become records (sql)")
    include: list[str] = Field(
        default_factory=lambda: ["**/*"],
        description="globs of tracked files to read, relative to the repository folder (git), "
        "e.g. ['**/*.py', 'docs/**/*.md']",
    )
    exclude: list[str] = Field(
        default_factory=list, description="globs of tracked files to leave out (git)"
    )
    max_record_chars: int = Field(200_000, gt=0, description="larger records are quarantined")

    @property
    def reads_files(self) -> bool:
        """Whether `path` is a glob of input files (the kinds read file by file)."""
        return self.kind in self.FILE_KINDS

    @property
    def url_password(self) -> str | None:
        """The password part of `url` as written (a ${ENV_VAR} placeholder, or a literal)."""
        scheme, separator, rest = (self.url or "").partition("://")
        userinfo, at, _host = rest.partition("/")[0].rpartition("@")
        _user, colon, password = userinfo.partition(":")
        return password if separator and at and colon else None

    @property
    def redacted_url(self) -> str | None:
        """`url` as written in the profile, any password in it replaced by ***."""
        password = self.url_password
        if self.url is None or not password:
            return self.url
        return self.url.replace(f":{password}@", ":***@", 1)

    @staticmethod
    def template_problem(template: str) -> str | None:
        """Why a str.format template cannot be used on a row, or None if it can."""
        import string

        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as error:
            return f"{error} (write a literal brace as {{{{ or }}}})"
        names = [name for _, name, _, _ in parsed if name is not None]
        if not names:
            return "names no field; write fields in braces, e.g. {body}"
        for name in names:
            if not name or name.isdigit() or any(char in name for char in ".[]"):
                return f"{{{name}}} is not a field name; use plain names such as {{body}}"
        return None

    @model_validator(mode="after")
    def _settings_fit_the_kind(self) -> SourceConfig:
        given = self.model_fields_set
        if self.kind == "sql":
            missing = [key for key in ("url", "query") if not getattr(self, key)]
            if missing:
                raise ValueError(f"kind sql needs {' and '.join(missing)}")
            if self.path is not None:
                raise ValueError("kind sql reads `url` and `query`, not `path`; remove `path`")
            if self.url_password and not self.url_password.startswith("${"):
                raise ValueError(
                    "url holds a password; put it in an environment variable instead, e.g. "
                    "postgresql://user:${DB_PASSWORD}@host/db"
                )
        elif not self.path:
            what = "the repository folder" if self.kind == "git" else "a glob of input files"
            raise ValueError(f"kind {self.kind} needs `path`: {what}")
        misplaced = [
            key
            for key, kinds in self.KIND_SPECIFIC_KEYS.items()
            if key in given and self.kind not in kinds
        ]
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} not used by kind {self.kind}; remove it")
        if self.template is not None and given & {"text_field", "prompt_fields"}:
            raise ValueError("template replaces text_field and prompt_fields; set only one")
        if self.response_template is not None and "response_field" in given:
            raise ValueError("response_template replaces response_field; set only one")
        for key in ("template", "response_template"):
            template = getattr(self, key)
            if template is not None:
                problem = self.template_problem(template)
                if problem:
                    raise ValueError(f"{key} {template!r}: {problem}")
        if self.kind == "git" and not self.include:
            raise ValueError("include is empty: list globs of files to read, e.g. ['**/*.md']")
        return self


class FeedbackConfig(StrictModel):
    """The quarterly loop: served exchanges and their feedback become next quarter's training
    rows; a schedule re-fine-tunes, and a sensor re-cleans when document folders change."""

    first_quarter: date = Field(
        date(2026, 1, 1), description="first day of the first quarter read from the store"
    )
    min_rating_kept: int = Field(
        4, ge=1, le=5, description="an uncorrected answer rated at least this is kept as it was"
    )
    schedule_running: bool = Field(
        True,
        description="the quarterly_refinetune schedule starts running (1 January, April, July, "
        "October) whenever the Dagster daemon runs; false: turn it on in the UI",
    )
    document_sensor_running: bool = Field(
        True, description="re-run cleaning when files in document sources change"
    )
    document_sensor_interval_seconds: int = Field(
        60, ge=5, description="how often document folders are looked at"
    )

    @field_validator("first_quarter")
    @classmethod
    def _starts_a_quarter(cls, value: date) -> date:
        if value.day != 1 or value.month not in (1, 4, 7, 10):
            raise ValueError(f"{value} is not the first day of a quarter (1 Jan/Apr/Jul/Oct)")
        return value
