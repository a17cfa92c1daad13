"""Atomic writes and content digests: a reader sees the previous version or the new one, never a
half-written file, even if the writer dies or the disk fills."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json_atomically(path: Path, value: Any) -> None:
    """`value` as indented JSON at `path`, which holds the old file or the whole new one."""
    with atomic_file(path) as temporary:
        temporary.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


@contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path` that becomes `path` only if the block succeeds.
    `path` must not exist yet: versioned folders are written once and never overwritten."""
    if path.exists():
        raise FileExistsError(f"{path} exists; versioned folders are written once")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    temporary.mkdir()
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def point_link_at(link: Path, target: Path) -> None:
    """Make `link` a symlink to `target` in one atomic step (rename over the old link)."""
    temporary = link.with_name(f".{link.name}.link-{uuid.uuid4().hex[:8]}")
    os.symlink(os.path.relpath(target, link.parent), temporary)
    os.replace(temporary, link)


def frame_digest(frame: pd.DataFrame) -> str:
    """Content hash of a table, independent of its index; nested values included."""
    payload = frame.reset_index(drop=True).to_json(orient="split", date_format="iso")
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def folder_digest(folder: Path) -> str:
    """Content hash of every file under `folder` (names and bytes)."""
    digest = hashlib.sha256()
    for item in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(item.relative_to(folder).as_posix().encode())
        _hash_file_into(digest, item)
    return digest.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """The full SHA-256 of one file, as published checksums give it."""
    digest = hashlib.sha256()
    _hash_file_into(digest, path)
    return digest.hexdigest()


def _hash_file_into(digest: Any, path: Path) -> None:
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)


def folder_size(folder: Path) -> int:
    """Bytes of every file under `folder`."""
    return sum(item.stat().st_size for item in folder.rglob("*") if item.is_file())


@dataclass(frozen=True)
class StoredTable:
    """A Parquet table on disk, read in batches so a large one never has to fit in memory.

    Assets that stream (raw sources, the cleaning step) return one of these; the asset store
    moves the file into place atomically, and hands it back to readers that ask to stream.
    """

    path: Path
    rows: int
    digest: str

    def batches(self, batch_size: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """The table's rows in order, `batch_size` at a time."""
        import pyarrow.parquet as pq

        with pq.ParquetFile(self.path) as table:
            for batch in table.iter_batches(batch_size=batch_size, columns=columns):
                yield batch.to_pandas()

    def read(self, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(self.path, columns=columns)

    @classmethod
    def open(cls, path: Path) -> StoredTable:
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as table:
            return cls(path, table.metadata.num_rows, "")


class TableWriter:
    """Appends DataFrame batches to a Parquet file with a fixed schema, counting rows and
    hashing them (row by row, so the digest does not depend on how rows were batched)."""

    def __init__(self, path: Path, schema: pa.Schema, digest: bool = True) -> None:
        import pyarrow.parquet as pq

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.schema = schema
        self.rows = 0
        self._digest = hashlib.sha256() if digest else None
        self._writer = pq.ParquetWriter(path, schema)

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        if frame.empty:
            return
        frame = frame[self.schema.names]
        if self._digest is not None:
            self._digest.update(frame.to_json(orient="records", lines=True).encode())
        self._writer.write_table(pa.Table.from_pandas(frame, self.schema, preserve_index=False))
        self.rows += len(frame)

    def close(self) -> StoredTable:
        self._writer.close()
        digest = self._digest.hexdigest()[:16] if self._digest is not None else ""
        return StoredTable(self.path, self.rows, digest)


def string_schema(columns: list[str], **other: pa.DataType) -> pa.Schema:
    """A Parquet schema of string columns, except those given another type in `other`."""
    import pyarrow as pa

    return pa.schema([(column, other.get(column, pa.string())) for column in columns])


def move_into_place(source: Path, target: Path) -> None:
    """Make the finished file `source` appear at `target` in one step (copied beside `target`
    first when the two are on different file systems)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError:
        with atomic_file(target) as temporary:
            shutil.copyfile(source, temporary)
        source.unlink(missing_ok=True)


def jsonl_rows(
    path: Path, error: type[Exception], hint: str = ""
) -> Iterator[tuple[str, int, Any]]:
    """(`file:line`, line number, parsed value) of each non-blank line of a hand-written JSONL
    file; a line that is not JSON raises `error` naming the file and line (then `hint`)."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            yield where, number, json.loads(line)
        except json.JSONDecodeError as problem:
            raise error(f"{where}: not valid JSON ({problem.msg}){hint}") from None
