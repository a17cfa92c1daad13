"""Faults a production run meets: a full disk mid-write, an MLflow server that does not answer,
two runs that want the one GPU."""

import errno
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from llm_assets.defs.resources import (
    ArtifactStoreResource,
    LocalAssetIOManager,
    MlflowResource,
    MlflowUnavailable,
)

from .conftest import PROJECT_ROOT, closed_port, session_database


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
    import json, pathlib, sys, time
    import dagster as dg

    @dg.asset(pool="gpu")
    def fine_tune() -> None:
        started = time.time()
        time.sleep(10)
        print("SPAN", json.dumps([started, time.time()]), flush=True)

    storages = json.loads(sys.argv[1])
    gate = pathlib.Path(sys.argv[2])
    with dg.instance_for_test(
        overrides={**storages, "concurrency": {"pools": {"default_limit": 1}}}
    ) as instance:
        # Both runs go for the GPU within a millisecond or so, whatever their start-up took.
        (gate / sys.argv[3]).touch()
        while len(list(gate.iterdir())) < 2:
            time.sleep(0.001)
        print("READY", json.dumps(time.time()), flush=True)
        assert dg.materialize([fine_tune], instance=instance).success
    """
)


def production_storages(postgres_url: str) -> dict[str, object]:
    """The run, event log and schedule storages of dagster.production.yaml, on `postgres_url`."""
    config = yaml.safe_load((PROJECT_ROOT / "dagster.production.yaml").read_text())
    return {
        kind: {**config[kind], "config": {"postgres_url": postgres_url}}
        for kind in ("run_storage", "event_log_storage", "schedule_storage")
    }


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
    storages = production_storages(postgres_database)
    with dg.instance_for_test(overrides=storages) as instance:
        instance.event_log_storage.set_concurrency_slots("gpu", 1)

    script = tmp_path / "fine_tune.py"
    script.write_text(CHILD)
    gate = tmp_path / "ready"
    gate.mkdir()
    runs = [
        subprocess.Popen(
            [sys.executable, str(script), json.dumps(storages), str(gate), str(number)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for number in range(2)
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


def test_two_claims_interleaved_as_in_the_race_give_the_one_gpu_slot_to_one_run(
    postgres_database: str,
) -> None:
    """The statements of two claims of the one "gpu" slot interleaved as they were when two runs
    both held the GPU: this run has seen a free slot and not yet queued itself when the other
    claims; the other has picked the free row and not yet written it when this one does."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    other_picked_the_row = threading.Event()
    this_run_is_done = threading.Event()
    claimed: dict[str, bool] = {}

    with dg.instance_for_test(overrides=production_storages(postgres_database)) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("gpu", 1)

        def claim(run_id: str) -> None:
            claimed[run_id] = storage.claim_concurrency_slot("gpu", run_id, "fine_tune").is_claimed

        other = threading.Thread(target=claim, args=("other",))

        def interleave(connection, cursor, statement, parameters, *_):  # type: ignore[no-untyped-def]
            sql, run = statement.lstrip().upper(), str(parameters)
            if sql.startswith("INSERT INTO PENDING_STEPS") and "'this'" in run:
                other.start()
                # Serial claims keep the other claim from starting until this one is done.
                other_picked_the_row.wait(timeout=3)
            elif sql.startswith("UPDATE CONCURRENCY_SLOTS") and "'other'" in run:
                other_picked_the_row.set()
                this_run_is_done.wait(timeout=30)

        event.listen(Engine, "before_cursor_execute", interleave)
        try:
            claim("this")
            this_run_is_done.set()
            other.join(timeout=30)
        finally:
            event.remove(Engine, "before_cursor_execute", interleave)
        holders = [slot.run_id for slot in storage.get_concurrency_info("gpu").claimed_slots]

    assert claimed == {"this": True, "other": False}, (claimed, holders)
    assert holders == ["this"]


def test_mlflow_links_point_at_the_tracking_server_when_there_is_one() -> None:
    from types import SimpleNamespace

    run = SimpleNamespace(info=SimpleNamespace(experiment_id="3", run_id="abc"))
    server = MlflowResource(tracking_uri="http://mlflow.internal:5000/", experiment_name="e")
    local = MlflowResource(tracking_uri="sqlite:///var/mlflow/mlflow.db", experiment_name="e")

    assert server.run_url(run) == "http://mlflow.internal:5000/#/experiments/3/runs/abc"
    assert server.model_version_url("m", "2") == "http://mlflow.internal:5000/#/models/m/versions/2"
    assert local.model_version_url("m", "2") == f"{local.ui_url}/#/models/m/versions/2"
