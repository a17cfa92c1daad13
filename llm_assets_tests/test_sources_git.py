"""The `git` source kind, on a repository made in a temporary folder."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from llm_assets.settings import Profile, SourceConfig
from llm_assets.sources import read_source
from llm_assets.sources.git import GitSourceError, glob_to_regex, read_git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git program")


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-c",
            "user.name=Test",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    (folder / "src" / "app").mkdir(parents=True)
    (folder / "docs" / "guide").mkdir(parents=True)
    files: dict[str, bytes] = {
        "README.md": b"# App\n\nSyncs files.\n",
        "src/app/__init__.py": b"",
        "src/app/sync.py": b"def sync() -> None:\n    pass\n",
        "src/app/logo.py": b"LOGO = '\0binary\0'\n",
        "src/app/legacy.py": "# caf\xe9\n".encode("latin-1"),
        "src/app/big.py": b"x = 1\n" * 50,
        "docs/guide/lan.md": b"# LAN sync\n\nTurn it on.\n",
        "docs/draft.md": b"# Draft\n",
        "notes.txt": b"not included\n",
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    git(folder, "init", "-q")
    git(folder, "add", ".")
    git(folder, "commit", "-q", "-m", "first")
    (folder / "src" / "app" / "sync.py").write_text("uncommitted edit\n")
    (folder / "src" / "app" / "untracked.py").write_text("never committed\n")
    return folder


def git_source(**settings: object) -> SourceConfig:
    return SourceConfig.model_validate(
        {"name": "code", "kind": "git", "path": "repo", "max_record_chars": 200, **settings}
    )


def test_one_record_per_committed_file_matching_the_globs(repository: Path) -> None:
    source = git_source(include=["**/*.py", "docs/**/*.md", "README.md"], exclude=["docs/d*"])
    records = {record.uri: record for record in read_git(source, repository)}
    assert sorted(records) == [
        "README.md",
        "docs/guide/lan.md",
        "src/app/__init__.py",
        "src/app/big.py",
        "src/app/legacy.py",
        "src/app/logo.py",
        "src/app/sync.py",
    ]
    sync = records["src/app/sync.py"]
    assert sync.text == "def sync() -> None:\n    pass\n"  # the commit, not the working tree
    assert sync.fields == {
        "path": "src/app/sync.py",
        "language": "python",
        "commit": git(repository, "rev-parse", "HEAD"),
        "size": 29,
    }
    assert records["docs/guide/lan.md"].fields["language"] == "markdown"
    assert {uri: record.read_error for uri, record in records.items() if record.read_error} == {
        "src/app/__init__.py": "source.empty_text",
        "src/app/big.py": "source.too_large",
        "src/app/legacy.py": "source.invalid_utf8",
        "src/app/logo.py": "source.binary_file",
    }
    assert "src/app/legacy.py" in str(records["src/app/legacy.py"].error_detail)


def test_read_source_resolves_the_folder_from_the_profile(repository: Path) -> None:
    profile = Profile(sources=[git_source(include=["docs/**/*.md"])])
    profile = profile.model_copy(update={"base_dir": repository.parent})
    frame = read_source(profile, profile.sources[0])
    assert list(frame["uri"]) == ["docs/draft.md", "docs/guide/lan.md"]
    assert json.loads(frame["fields"][1])["path"] == "docs/guide/lan.md"


def test_a_folder_without_a_repository_or_commit_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GitSourceError, match="source 'code'.*not a git repository"):
        read_git(git_source(), tmp_path)
    git(tmp_path, "init", "-q")
    with pytest.raises(GitSourceError, match="no commit yet"):
        read_git(git_source(), tmp_path)
    with pytest.raises(GitSourceError, match="is not a folder"):
        read_git(git_source(), tmp_path / "absent")


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("**/*.py", ["a.py", "src/x/a.py"], ["a.pyc", "a.py/b"]),
        ("docs/**/*.md", ["docs/a.md", "docs/x/y/a.md"], ["a.md", "src/docs/a.md"]),
        ("*.md", ["README.md"], ["docs/a.md"]),
        ("src/[!t]*.py", ["src/a.py"], ["src/test.py"]),
    ],
)
def test_globs_match_paths_folder_by_folder(
    pattern: str, matches: list[str], misses: list[str]
) -> None:
    regex = glob_to_regex(pattern)
    assert all(regex.match(path) for path in matches)
    assert not any(regex.match(path) for path in misses)


def test_git_settings_are_checked_in_the_profile() -> None:
    with pytest.raises(ValueError, match="kind git needs `path`: the repository folder"):
        SourceConfig(name="code", kind="git")
    with pytest.raises(ValueError, match="include not used by kind jsonl"):
        SourceConfig(name="code", kind="jsonl", path="t.jsonl", include=["*.py"])
