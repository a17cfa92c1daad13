"""The Model Registry on a real local MLflow store (SQLite in a temporary folder)."""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_assets.contracts import Adapter
from llm_assets.evaluation.registry import (
    CHALLENGER,
    CHAMPION,
    find_champion,
    list_versions,
    register_adapter,
    set_alias,
    version_by_alias,
)

MODEL = "support-assistant-test"


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import mlflow

    root = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    experiment_id = mlflow.create_experiment("registry", (root / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    yield mlflow
    mlflow.set_tracking_uri(previous)


def _trained_adapter(tracking: Any, folder: Path, digest: str) -> Adapter:
    """An adapter folder logged to a run, as qlora_adapter leaves it, and its manifest."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 4}), encoding="utf-8")
    (folder / "adapter_model.safetensors").write_bytes(digest.encode())
    with tracking.start_run() as run:
        tracking.log_artifacts(str(folder), artifact_path="adapter")
    return Adapter(
        path=str(folder),
        method="qlora",
        base_model_path="/models/tiny-llama",
        base_model_id="llm-assets/tiny-llama",
        mlflow_run_id=run.info.run_id,
        global_step=1,
        train_loss=1.0,
        weights_digest=digest,
    )


def test_register_tags_the_base_and_does_not_duplicate_weights(
    tracking: Any, tmp_path: Path
) -> None:
    manifest = _trained_adapter(tracking, tmp_path / "a", "digest-a")
    version, created = register_adapter(tracking, MODEL, manifest, dagster_run_id="run-1")
    assert created
    assert version.tags["base_model_path"] == "/models/tiny-llama"
    assert version.tags["base_model_id"] == "llm-assets/tiny-llama"
    assert version.tags["weights_digest"] == "digest-a"
    assert version.tags["adapter_path"] == str(tmp_path / "a")
    assert version.tags["dagster_run_id"] == "run-1"
    assert version.source == f"runs:/{manifest.mlflow_run_id}/adapter"

    again, created_again = register_adapter(tracking, MODEL, manifest, dagster_run_id="run-2")
    assert not created_again and again.version == version.version
    assert [row["version"] for row in list_versions(tracking, MODEL)] == [int(version.version)]


def test_aliases_and_the_champion(tracking: Any, tmp_path: Path) -> None:
    name = MODEL + "-aliases"
    assert find_champion(tracking, name) is None  # no registered model yet
    first, _ = register_adapter(tracking, name, _trained_adapter(tracking, tmp_path / "1", "d1"))
    set_alias(tracking, name, CHALLENGER, first.version)
    assert find_champion(tracking, name) is None  # registered, but no champion alias
    set_alias(tracking, name, CHAMPION, first.version)
    second, _ = register_adapter(tracking, name, _trained_adapter(tracking, tmp_path / "2", "d2"))
    set_alias(tracking, name, CHALLENGER, second.version)

    champion = find_champion(tracking, name)
    assert champion is not None
    assert champion["version"] == str(first.version)
    assert champion["path"] == str(tmp_path / "1")
    assert champion["base_model_path"] == "/models/tiny-llama"
    assert champion["method"] == "qlora"
    assert version_by_alias(tracking, name, CHALLENGER).version == second.version
    rows = {row["version"]: row["aliases"] for row in list_versions(tracking, name)}
    assert rows == {int(second.version): [CHALLENGER], int(first.version): [CHAMPION]}


def test_champion_whose_folder_is_gone_is_downloaded_from_its_artifacts(
    tracking: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_assets.serving.guardrails import (
        calibrate_min_relevance,
        read_scope_calibration,
        write_scope_calibration,
    )

    monkeypatch.setenv("LLM_ASSETS_STATE_DIR", str(tmp_path / "state"))
    name = MODEL + "-download"
    manifest = _trained_adapter(tracking, tmp_path / "gone", "d-gone")
    # Written beside the adapter after its run's artifacts were logged, as qlora_adapter does.
    (tmp_path / "gone" / "retrieval_context.json").write_text('{"k": 3, "max_chars": 800}')
    scores = [0.001 * n for n in range(1200)]
    write_scope_calibration(tmp_path / "gone", scores)
    version, _ = register_adapter(tracking, name, manifest)
    set_alias(tracking, name, CHAMPION, version.version)
    shutil.rmtree(tmp_path / "gone")

    champion = find_champion(tracking, name)
    assert champion is not None
    restored = Path(champion["path"])
    assert restored.is_relative_to(tmp_path / "state" / "registry")
    assert json.loads((restored / "adapter_config.json").read_text()) == {"r": 4}
    assert champion["mlflow_run_id"] == manifest.mlflow_run_id
    # It is asked as it was trained, behind the same scope guard: the calibration came back in
    # a tag, thinned to 500 of 1,200 ranks, which moves the threshold by under 3 ranks.
    assert json.loads((restored / "retrieval_context.json").read_text())["k"] == 3
    carried = read_scope_calibration(restored)
    assert carried is not None and len(carried) == 500
    for share in (0.99, 0.95, 0.9):
        full = calibrate_min_relevance(scores, share)
        assert abs(calibrate_min_relevance(carried, share) - full) <= 0.003


def test_a_logged_mlflow_model_is_registered_by_its_uri(
    tracking: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc

    class AdapterModel(mlflow.pyfunc.PythonModel):
        """A stand-in whose artifacts are the adapter folder, as training logs a model."""

        def predict(self, context: Any, model_input: list[str]) -> list[str]:
            return model_input

    monkeypatch.setenv("LLM_ASSETS_STATE_DIR", str(tmp_path / "state"))
    name = MODEL + "-logged"
    folder = tmp_path / "adapter"
    manifest = _trained_adapter(tracking, folder, "d-logged")
    with tracking.start_run(run_id=manifest.mlflow_run_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=AdapterModel(),
            artifacts={"adapter": str(folder)},
            pip_requirements=[],
        )
    version, created = register_adapter(
        tracking, name, manifest.model_copy(update={"mlflow_model_uri": info.model_uri})
    )
    assert created and version.source.startswith("models:/")
    set_alias(tracking, name, CHAMPION, version.version)
    shutil.rmtree(folder)
    champion = find_champion(tracking, name)
    assert champion is not None
    assert (Path(champion["path"]) / "adapter_config.json").is_file()
