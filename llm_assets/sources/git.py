"""Files of a git repository at its HEAD commit, one record per tracked file.

Content is read from the commit (`git ls-tree` and `git cat-file`), not the working tree, so a
record always matches the `commit` it names and uncommitted edits never leak in.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from llm_assets.settings import SourceConfig
from llm_assets.sources.records import RawRecord, quarantined

LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".ipynb": "jupyter",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "restructuredtext",
    ".txt": "text",
    ".adoc": "asciidoc",
    ".js": "javascript",
    ".mjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".java": "java",
    ".kt": "kotlin",
    ".scala": "scala",
    ".go": "go",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",
    ".cc": "c++",
    ".cpp": "c++",
    ".hpp": "c++",
    ".cs": "c#",
    ".rb": "ruby",
    ".php": "php",
    ".swift": "swift",
    ".sh": "shell",
    ".bash": "shell",
    ".sql": "sql",
    ".html": "html",
    ".css": "css",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".ini": "ini",
    ".cfg": "ini",
    ".xml": "xml",
    ".proto": "protobuf",
    ".tf": "terraform",
}
FILENAME_LANGUAGES = {"Dockerfile": "dockerfile", "Makefile": "makefile"}
# Git's own test for binary content: a NUL byte in the first 8000 bytes.
BINARY_PROBE_BYTES = 8000


class GitSourceError(RuntimeError):
    """A git source that cannot be read at all: no git, not a repository, no commit."""


@dataclass(frozen=True)
class TreeEntry:
    path: str
    mode: str
    kind: str  # blob, or commit for a submodule
    object_id: str
    size: int | None


def language_of(path: str) -> str | None:
    """The language a file is written in, from its name; None where the name does not say."""
    name = PurePosixPath(path).name
    return FILENAME_LANGUAGES.get(name) or LANGUAGES.get(PurePosixPath(path).suffix.lower())


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: `*` and `?` stay within one folder, `**/` spans any number of
    folders (none included), `[...]` is a character class. `docs/**/*.md` matches
    `docs/a.md` and `docs/x/y/a.md`."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        elif pattern[index] == "[" and "]" in pattern[index + 2 :]:
            end = pattern.index("]", index + 2)
            body = pattern[index + 1 : end]
            parts.append(f"[^{body[1:]}]" if body.startswith("!") else f"[{body}]")
            index = end + 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts) + r"\Z")


def selected(path: str, include: list[re.Pattern[str]], exclude: list[re.Pattern[str]]) -> bool:
    return any(p.match(path) for p in include) and not any(p.match(path) for p in exclude)


def _git(folder: Path, *args: str, source_name: str) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotepath=off", *args],
            cwd=folder,
            capture_output=True,
            check=False,
        )
    except OSError as error:
        raise GitSourceError(
            f"source '{source_name}': cannot run git in {folder}: {error}"
        ) from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise GitSourceError(
            f"source '{source_name}': `git {' '.join(args)}` failed in {folder}: {message}"
        )
    return done.stdout


def head_tree(folder: Path, source_name: str) -> tuple[str, list[TreeEntry]]:
    """The HEAD commit id and every entry of its tree under `folder`, paths relative to it."""
    if shutil.which("git") is None:
        raise GitSourceError(f"source '{source_name}': kind git needs the `git` program on PATH")
    if not folder.is_dir():
        raise GitSourceError(
            f"source '{source_name}': {folder} is not a folder; set `path` to a repository"
        )
    try:
        _git(folder, "rev-parse", "--git-dir", source_name=source_name)
    except GitSourceError as error:
        raise GitSourceError(f"{error}; set `path` to a folder of a git repository") from None
    try:
        commit = _git(folder, "rev-parse", "--verify", "HEAD", source_name=source_name)
    except GitSourceError:
        raise GitSourceError(
            f"source '{source_name}': the repository at {folder} has no commit yet; commit the "
            "files to read"
        ) from None
    listing = _git(folder, "ls-tree", "-r", "-z", "--long", "HEAD", source_name=source_name)
    entries = []
    for line in listing.split(b"\0"):
        if not line:
            continue
        meta, _, raw_path = line.partition(b"\t")
        mode, kind, object_id, size = meta.decode().split()
        entries.append(
            TreeEntry(
                path=raw_path.decode("utf-8", "backslashreplace"),
                mode=mode,
                kind=kind,
                object_id=object_id,
                size=None if size == "-" else int(size),
            )
        )
    return commit.decode().strip(), entries


class BlobReader:
    """Reads blobs one at a time through a long-running `git cat-file --batch`."""

    def __init__(self, folder: Path) -> None:
        self.process = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdin and self.process.stdout  # both are pipes
        self.requests, self.replies = self.process.stdin, self.process.stdout

    def read(self, object_id: str) -> bytes | None:
        """The blob's bytes, or None if the repository lacks it (e.g. a partial clone)."""
        self.requests.write(f"{object_id}\n".encode())
        self.requests.flush()
        header = self.replies.readline().split()  # <id> <type> <size>, or <id> missing
        if len(header) != 3:
            return None
        content = self.replies.read(int(header[2]))
        self.replies.read(1)  # the newline after each object
        return content

    def close(self) -> None:
        self.requests.close()
        self.process.wait()


def blob_to_record(
    entry: TreeEntry, content: bytes, commit: str, source: SourceConfig
) -> RawRecord:
    path = entry.path
    if b"\0" in content[:BINARY_PROBE_BYTES]:
        return quarantined(
            source.name, path, "source.binary_file", f"{path}: binary content ({len(content)} B)"
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return quarantined(
            source.name,
            path,
            "source.invalid_utf8",
            f"{path}: not UTF-8 at byte {error.start} ({error.reason})",
        )
    if not text.strip():
        return quarantined(source.name, path, "source.empty_text", f"{path}: empty file")
    if len(text) > source.max_record_chars:
        return quarantined(
            source.name,
            path,
            "source.too_large",
            f"{path}: {len(text)} characters > max_record_chars={source.max_record_chars}",
        )
    return RawRecord(
        record_id=path,
        source=source.name,
        uri=path,
        text=text,
        fields={
            "path": path,
            "language": language_of(path),
            "commit": commit,
            "size": len(content),
        },
    )


def read_git(source: SourceConfig, folder: Path) -> list[RawRecord]:
    """One record per file of the HEAD commit matching `include` and no `exclude` glob (paths
    relative to `folder`). Binary, non-UTF-8, empty and oversized files, symlinks and submodules
    are quarantined. Raises GitSourceError if `folder` is not a repository with a commit."""
    commit, entries = head_tree(folder, source.name)
    include = [glob_to_regex(pattern) for pattern in source.include]
    exclude = [glob_to_regex(pattern) for pattern in source.exclude]
    records: list[RawRecord] = []
    blobs = BlobReader(folder)
    try:
        for entry in entries:
            path = entry.path
            if not selected(path, include, exclude):
                continue
            if entry.kind != "blob":
                records.append(
                    quarantined(
                        source.name, path, "source.submodule", f"{path}: a submodule, not a file"
                    )
                )
            elif entry.mode == "120000":
                records.append(
                    quarantined(source.name, path, "source.symlink", f"{path}: a symbolic link")
                )
            elif (entry.size or 0) > 4 * source.max_record_chars:  # UTF-8: <= 4 bytes a char
                records.append(
                    quarantined(
                        source.name,
                        path,
                        "source.too_large",
                        f"{path}: {entry.size} bytes > 4 x max_record_chars="
                        f"{source.max_record_chars}",
                    )
                )
            else:
                content = blobs.read(entry.object_id)
                if content is None:
                    records.append(
                        quarantined(
                            source.name,
                            path,
                            "source.unreadable_file",
                            f"{path}: object {entry.object_id} is not in the repository",
                        )
                    )
                else:
                    records.append(blob_to_record(entry, content, commit, source))
    finally:
        blobs.close()
    return records
