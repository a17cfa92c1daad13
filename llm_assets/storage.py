"""Atomic writes and content digests: a reader sees the previous version or the new one, never a
half-written file, even if the writer dies or the disk fills."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


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
        with item.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]
