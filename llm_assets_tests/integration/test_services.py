"""The graph against real services: a Postgres-backed Dagster instance and an MLflow tracking
server, as `.ci/services.sh` starts them (CI always; elsewhere when the variables are set)."""

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ..conftest import PROJECT_ROOT
from .conftest import MaterializedGraph

pytestmark = pytest.mark.slow


@pytest.fixture
def services(graph: MaterializedGraph) -> MaterializedGraph:
    if not (graph.services.postgres_url and graph.services.mlflow_uri):
        pytest.skip("no PostgreSQL/MLflow server: `make services` and export what it prints")
    return graph


def test_the_whole_graph_ran_on_postgres_and_tracked_to_the_mlflow_server(
    services: MaterializedGraph,
) -> None:
    instance = services.instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert services.result.success
    mlflow = services.resources["mlflow"].tracking()
    assert mlflow.get_tracking_uri() == services.services.mlflow_uri
    adapter = services.value("qlora_adapter")
    run = mlflow.get_run(adapter["mlflow_run_id"])
    assert run.data.tags["dagster.run_id"] == services.result.run_id
    # Artifacts went through the server (--serve-artifacts), not to a local path.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert mlflow.artifacts.list_artifacts(run_id=run.info.run_id)


def test_the_production_instance_config_uses_postgres_and_queues_gpu_runs(
    services: MaterializedGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._core.instance import DagsterInstance

    server = urlparse(os.environ["LLM_ASSETS_TEST_POSTGRES_URL"])
    database = urlparse(services.instance.run_storage.postgres_url).path.lstrip("/")  # type: ignore[attr-defined]
    for name, value in {
        "DAGSTER_PG_HOST": server.hostname,
        "DAGSTER_PG_PORT": str(server.port or 5432),
        "DAGSTER_PG_USER": server.username,
        "DAGSTER_PG_PASSWORD": server.password,
        "DAGSTER_PG_DB": database,
    }.items():
        monkeypatch.setenv(name, str(value))
    (tmp_path / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.production.yaml")

    instance = DagsterInstance.from_config(str(tmp_path))

    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    queue = instance.get_concurrency_config().run_queue_config
    assert {"key": "llm_assets/gpu", "value": "true", "limit": 1} in queue.tag_concurrency_limits
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    # It sees the runs the suite made: the same database, read through the production config.
    assert instance.get_run_by_id(services.result.run_id) is not None
