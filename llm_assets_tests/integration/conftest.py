"""The whole graph on the tiny test profile, materialized once per test session."""

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from llm_assets.defs import build_definitions
from llm_assets.defs.resources import default_resources
from llm_assets.defs.selection import run_plan
from llm_assets.settings import Profile, load_profile

from ..conftest import TINY_PROFILE, _is_local, session_database


@dataclass
class MaterializedGraph:
    profile: Profile
    defs: dg.Definitions
    instance: dg.DagsterInstance
    result: dg.ExecuteInProcessResult
    state: Path
    network_attempts: list[object]
    resources: dict[str, Any]
    services: "Services"
    # The runs before `result`: one per quarter of feedback.
    partition_results: list[dg.ExecuteInProcessResult]

    def value(self, key: str, python_type: type | None = None) -> Any:
        """The stored value; a contract (e.g. `Adapter`) when `python_type` names one."""
        return self.defs.load_asset_value(key, instance=self.instance, python_type=python_type)

    def metadata(self, key: str) -> dict[str, Any]:
        """The plain metadata values of the asset's latest materialization."""
        event = self.instance.get_latest_materialization_event(dg.AssetKey(key))
        assert event is not None and event.asset_materialization is not None
        return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that move the session graph forward (a new quarter, a new champion) run after every
    test that reads it as materialized."""
    items.sort(key=lambda item: item.get_closest_marker("advances_session_graph") is not None)


def materialize_all(defs: dg.Definitions, instance: dg.DagsterInstance, **kwargs: Any) -> Any:
    """The assets of `selection` in one run (default: every asset, as `make run` does it, and
    the result of its last, unpartitioned run)."""
    everything = [*(defs.assets or []), *(defs.asset_checks or [])]
    if "selection" in kwargs:
        return dg.materialize(everything, instance=instance, resources=defs.resources, **kwargs)
    return materialize_everything(defs, instance, **kwargs)[-1]


def materialize_everything(
    defs: dg.Definitions, instance: dg.DagsterInstance, **kwargs: Any
) -> list[dg.ExecuteInProcessResult]:
    """Every asset as `make run` materializes them: each quarter of feedback in a run of its
    own, then the rest in one run. The results, in that order."""
    everything = [*(defs.assets or []), *(defs.asset_checks or [])]
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    return [
        dg.materialize(
            everything,
            instance=instance,
            resources=defs.resources,
            selection=list(selected),
            partition_key=partition,
            **kwargs,
        )
        for selected, partition in run_plan(defs, instance, keys)
    ]


# Secrets the session's environment holds while the graph runs, as a deployment's would: none
# may surface in MLflow or Dagster metadata (test_security.py scans for them).
PLANTED_SECRETS = {
    "HF_TOKEN": "hf_PlantedHubToken7Q2xVb9LmW4kZt",
    "LLM_ASSETS_SERVE_TOKEN": "serve-planted-token-4d1f8c2a9e",
    "LLM_ASSETS_PGVECTOR_URL": "postgresql+psycopg://rag:Planted-Pg-Password-61x@db:5432/rag",
    "OPENAI_API_KEY": "sk-planted-teacher-key-0b7e3a5c",
}


@dataclass(frozen=True)
class Services:
    """Where the session's Dagster instance and MLflow runs live: a Postgres database of their
    own and an MLflow server when `.ci/services.sh` started them, else SQLite in the state dir."""

    postgres_url: str | None
    mlflow_uri: str | None

    @classmethod
    def from_environment(cls) -> "Services":
        services = cls(
            os.environ.get("LLM_ASSETS_TEST_POSTGRES_URL") or None,
            os.environ.get("LLM_ASSETS_TEST_MLFLOW_URI") or None,
        )
        if os.environ.get("CI") and not (services.postgres_url and services.mlflow_uri):
            raise RuntimeError(
                "CI must run the suite against PostgreSQL and an MLflow server: source "
                ".ci/services.sh first (it exports LLM_ASSETS_TEST_POSTGRES_URL and "
                "LLM_ASSETS_TEST_MLFLOW_URI)"
            )
        return services


@pytest.fixture(scope="session")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MaterializedGraph]:
    import socket

    state = tmp_path_factory.mktemp("state")
    services = Services.from_environment()
    profile = load_profile(TINY_PROFILE)
    session = uuid.uuid4().hex[:8]
    if services.mlflow_uri:
        # One MLflow server holds every session's runs: a registered model of its own keeps
        # this session's champion from being an earlier session's.
        use_case = profile.use_case.model_copy(
            update={"registered_model_name": f"{profile.use_case.registered_model_name}-{session}"}
        )
        profile = profile.model_copy(update={"use_case": use_case})
    resources = default_resources(
        state,
        experiment_name=f"llm_assets-test-{session}",
        tracking_uri=services.mlflow_uri,
    )
    defs = build_definitions(profile, resources=resources)
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> None:
        if not _is_local(address):
            attempts.append(address)
            raise OSError(f"network access attempted in an air-gapped test: {address}")
        real_connect(self, address)  # type: ignore[arg-type]

    (state / "dagster").mkdir()
    with ExitStack() as stack:
        overrides = None
        if services.postgres_url:
            database = stack.enter_context(session_database(services.postgres_url))
            overrides = {"storage": {"postgres": {"postgres_url": database}}}
        instance = stack.enter_context(
            dg.instance_for_test(temp_dir=str(state / "dagster"), overrides=overrides)
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(socket.socket, "connect", guarded_connect)
            for name, value in PLANTED_SECRETS.items():
                patch.setenv(name, value)
            *partition_results, result = materialize_everything(
                defs, instance, raise_on_error=False
            )
        yield MaterializedGraph(
            profile, defs, instance, result, state, attempts, resources, services, partition_results
        )
