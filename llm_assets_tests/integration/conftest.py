"""The whole graph on the tiny test profile, materialized once per test session."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from llm_assets.defs import build_definitions
from llm_assets.defs.resources import default_resources
from llm_assets.settings import Profile, load_profile

from ..conftest import TINY_PROFILE, _is_local


@dataclass
class MaterializedGraph:
    profile: Profile
    defs: dg.Definitions
    instance: dg.DagsterInstance
    result: dg.ExecuteInProcessResult
    state: Path
    network_attempts: list[object]

    def value(self, key: str) -> Any:
        return self.defs.load_asset_value(key, instance=self.instance)


def materialize_all(defs: dg.Definitions, instance: dg.DagsterInstance, **kwargs: Any) -> Any:
    return dg.materialize(
        [*(defs.assets or []), *(defs.asset_checks or [])],
        instance=instance,
        resources=defs.resources,
        **kwargs,
    )


@pytest.fixture(scope="session")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MaterializedGraph]:
    import socket

    state = tmp_path_factory.mktemp("state")
    profile = load_profile(TINY_PROFILE)
    defs = build_definitions(profile, resources=default_resources(state))
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> None:
        if not _is_local(address):
            attempts.append(address)
            raise OSError(f"network access attempted in an air-gapped test: {address}")
        real_connect(self, address)  # type: ignore[arg-type]

    (state / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(state / "dagster")) as instance:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(socket.socket, "connect", guarded_connect)
            result = materialize_all(defs, instance, raise_on_error=False)
        yield MaterializedGraph(profile, defs, instance, result, state, attempts)
