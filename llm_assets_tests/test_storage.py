import json
from pathlib import Path

import pandas as pd
import pytest

from llm_assets.storage import (
    atomic_directory,
    atomic_file,
    frame_digest,
    point_link_at,
    write_json_atomically,
)


def test_atomic_file_keeps_previous_version_when_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "table.parquet"
    target.write_text("previous")
    with pytest.raises(OSError, match="disk full"):
        with atomic_file(target) as temporary:
            temporary.write_text("half")
            raise OSError("disk full")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]


def test_json_written_atomically_replaces_whole_or_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "results" / "bench.json"
    write_json_atomically(path, {"rows": 3})
    assert json.loads(path.read_text(encoding="utf-8")) == {"rows": 3}
    with pytest.raises(TypeError):
        write_json_atomically(path, {"rows": object()})  # not JSON: nothing is replaced
    assert json.loads(path.read_text(encoding="utf-8")) == {"rows": 3}
    assert [p.name for p in path.parent.iterdir()] == ["bench.json"]


def test_atomic_directory_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "model") as folder:
            (folder / "weights").write_text("partial")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(tmp_path / "model") as folder:
        (folder / "weights").write_text("whole")
    assert (tmp_path / "model" / "weights").read_text() == "whole"
    with pytest.raises(FileExistsError):
        with atomic_directory(tmp_path / "model"):
            pass


def test_point_link_at_swaps_versions(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    point_link_at(tmp_path / "current", tmp_path / "v1")
    point_link_at(tmp_path / "current", tmp_path / "v2")
    assert (tmp_path / "current").resolve() == (tmp_path / "v2").resolve()


def test_frame_digest_depends_on_content_not_index() -> None:
    frame = pd.DataFrame({"a": [1, 2], "m": [[{"r": "x"}], []]})
    assert frame_digest(frame) == frame_digest(frame.set_axis([5, 6]))
    assert frame_digest(frame) != frame_digest(frame.assign(a=[1, 3]))
