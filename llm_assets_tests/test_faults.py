"""Faults a production run meets: a full disk mid-write, an MLflow server that does not answer,
two runs that want the one GPU."""

import errno
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from llm_assets.defs.resources import (
    ArtifactStoreResource,
    LocalAssetIOManager,
    MlflowResource,
    MlflowUnavailable,
)

from .conftest import closed_port, session_database


def _disk_fills_after(limit_bytes: int):  # type: ignore[no-untyped-def]
    """A `to_parquet` that writes `limit_bytes` of the file, then fails as a full disk does."""

    def to_parquet(self: pd.DataFrame, path: object, **_: object) -> None:
        Path(str(path)).write_bytes(b"PAR1" + b"\0" * limit_bytes)
        raise OSError(errno.ENOSPC, "No space left on device")

    return to_parquet


def test_a_full_disk_never_leaves_a_partial_asset_and_the_previous_version_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = {"version": [1, 1, 1]}

    @dg.asset
    def corpus() -> pd.DataFrame:
        return pd.DataFrame(rows)

    io_manager = LocalAssetIOManager(base_dir=str(tmp_path / "assets"))
    with dg.instance_for_test() as instance:
        assert dg.materialize([corpus], instance=instance, resources={"io_manager": io_manager})
        rows["version"] = [2, 2, 2]
        monkeypatch.setattr(pd.DataFrame, "to_parquet", _disk_fills_after(64))
        failed = dg.materialize(
            [corpus], instance=instance, resources={"io_manager": io_manager}, raise_on_error=False
        )
        monkeypatch.undo()

    assert not failed.success
    stored = pd.read_parquet(tmp_path / "assets" / "corpus.parquet")
    assert stored["version"].tolist() == [1, 1, 1]
    assert sorted(p.name for p in (tmp_path / "assets").iterdir()) == ["corpus.parquet"]


def test_a_datasets_split_with_no_rows_is_stored_and_read_back(tmp_path: Path) -> None:
    """A quarter with no disliked answers gives an empty split; `datasets` saves one with its
    default sharding so that it cannot be loaded again."""
    from datasets import Dataset, DatasetDict

    @dg.asset
    def preferences() -> DatasetDict:
        empty = pd.DataFrame(
            {"prompt": pd.Series([], dtype=object), "label": pd.Series([], dtype=bool)}
        )
        return DatasetDict(
            kto=Dataset.from_pandas(empty, preserve_index=False),
            dpo=Dataset.from_pandas(pd.DataFrame({"prompt": ["q"]}), preserve_index=False),
        )

    @dg.asset
    def reader(preferences: DatasetDict) -> pd.DataFrame:
        return pd.DataFrame({"rows": [len(preferences["kto"]), len(preferences["dpo"])]})

    io_manager = LocalAssetIOManager(base_dir=str(tmp_path / "assets"))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [preferences, reader], instance=instance, resources={"io_manager": io_manager}
        )
        assert result.output_for_node("reader")["rows"].tolist() == [0, 1]


def test_a_model_folder_that_fails_midway_is_never_visible(tmp_path: Path) -> None:
    artifacts = ArtifactStoreResource(base_dir=str(tmp_path / "artifacts"))

    with pytest.raises(OSError, match="No space left"):
        with artifacts.new_folder("merged_model", "run-1") as folder:
            (folder / "model.safetensors").write_bytes(b"\0" * 128)
            raise OSError(errno.ENOSPC, "No space left on device")

    assert not artifacts.folder("merged_model", "run-1").exists()
    assert list((tmp_path / "artifacts" / "merged_model").iterdir()) == []


def test_an_unreachable_mlflow_server_fails_fast_with_a_clear_message() -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    mlflow = MlflowResource(tracking_uri=dead, experiment_name="never")
    started = time.perf_counter()

    with pytest.raises(MlflowUnavailable) as raised:
        mlflow.tracking()

    assert time.perf_counter() - started < 10
    assert dead in str(raised.value)
    assert "nothing was started" in str(raised.value)


CHILD = textwrap.dedent(
    """
    import json, sys, time
    import dagster as dg

    @dg.asset(pool="gpu")
    def fine_tune() -> None:
        started = time.time()
        time.sleep(10)
        print("SPAN", json.dumps([started, time.time()]), flush=True)

    storage = {"postgres": {"postgres_url": sys.argv[1]}}
    with dg.instance_for_test(
        overrides={"storage": storage, "concurrency": {"pools": {"default_limit": 1}}}
    ) as instance:
        print("READY", json.dumps(time.time()), flush=True)
        assert dg.materialize([fine_tune], instance=instance).success
    """
)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    server = os.environ.get("LLM_ASSETS_TEST_POSTGRES_URL")
    if not server:
        if os.environ.get("CI"):
            pytest.fail("CI runs this against PostgreSQL: source .ci/services.sh first")
        pytest.skip("set LLM_ASSETS_TEST_POSTGRES_URL (make services) to run against PostgreSQL")
    with session_database(server) as url:
        yield url


@pytest.mark.slow
def test_two_runs_that_want_the_gpu_take_turns(postgres_database: str, tmp_path: Path) -> None:
    # As `make production-instance` does once per deployment: the schema and the pool's limit
    # exist before any run. Two runs that both create them on a fresh database race on the
    # pool's row (an IntegrityError in one of them).
    storage = {"postgres": {"postgres_url": postgres_database}}
    with dg.instance_for_test(overrides={"storage": storage}) as instance:
        instance.event_log_storage.set_concurrency_slots("gpu", 1)

    script = tmp_path / "fine_tune.py"
    script.write_text(CHILD)
    runs = [
        subprocess.Popen(
            [sys.executable, str(script), postgres_database],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=240)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs

    def stamp(output: str, label: str) -> object:
        line = next(line for line in output.splitlines() if line.startswith(label + " "))
        return json.loads(line.split(" ", 1)[1])

    spans = sorted((stamp(out, "SPAN"), stamp(out, "READY")) for out in outputs)
    (first, _), (second, second_ready) = spans
    assert second_ready < first[1], "the second run started only after the first had finished"
    assert second[0] >= first[1], f"both held the GPU at once: {spans}"


def test_mlflow_links_point_at_the_tracking_server_when_there_is_one() -> None:
    from types import SimpleNamespace

    run = SimpleNamespace(info=SimpleNamespace(experiment_id="3", run_id="abc"))
    server = MlflowResource(tracking_uri="http://mlflow.internal:5000/", experiment_name="e")
    local = MlflowResource(tracking_uri="sqlite:///var/mlflow/mlflow.db", experiment_name="e")

    assert server.run_url(run) == "http://mlflow.internal:5000/#/experiments/3/runs/abc"
    assert server.model_version_url("m", "2") == "http://mlflow.internal:5000/#/models/m/versions/2"
    assert local.model_version_url("m", "2") == f"{local.ui_url}/#/models/m/versions/2"
