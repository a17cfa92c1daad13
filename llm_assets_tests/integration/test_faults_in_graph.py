"""Faults met inside the graph: the MLflow server gone when training starts."""

import time

import dagster as dg
import pytest

from llm_assets.defs.resources import MlflowResource

from ..conftest import closed_port
from .conftest import MaterializedGraph

pytestmark = pytest.mark.slow


def test_training_stops_before_it_starts_when_mlflow_is_unreachable(
    graph: MaterializedGraph,
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    key = dg.AssetKey("qlora_adapter")
    before = graph.instance.get_latest_materialization_event(key)
    started = time.perf_counter()

    result = dg.materialize(
        [*(graph.defs.assets or []), *(graph.defs.asset_checks or [])],
        instance=graph.instance,
        resources={**graph.resources, "mlflow": MlflowResource(tracking_uri=dead)},
        selection=[key],
        raise_on_error=False,
    )

    assert not result.success
    assert time.perf_counter() - started < 120
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = str(failure.event_specific_data.error)  # type: ignore[union-attr]
    assert "unreachable" in message and dead in message
    logs = [str(e.message) for e in result.all_events]
    assert not any("training process:" in line for line in logs), "training was launched"
    after = graph.instance.get_latest_materialization_event(key)
    assert after is not None and before is not None
    assert after.run_id == before.run_id  # the adapter in place is still the last one made
