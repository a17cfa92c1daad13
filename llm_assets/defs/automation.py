"""When assets re-make themselves: one declarative condition, used by the sensor and `make refresh`.

Every asset carries the condition "out of date": never made, made with another code version
(its settings or its stage's code changed), or an input's data changed since it was made — read
from the versions Dagster records on each materialization, so a change is never forgotten when a
tick passes or a run fails (Dagster's built-in `code_version_changed` compares with the previous
*evaluation*, and forgets a change whose run failed).

- `out_of_date_assets_sensor` (RUNNING) evaluates it for the data stages and for what follows a
  new adapter: a changed cleaning setting re-cleans, a new golden set re-evaluates. Fine-tuning
  and the quarters of feedback are not its targets: they re-run with the quarterly schedule,
  which reads the quarter that just ended, so a document edit never starts a training run.
- `make refresh` (`llm-assets materialize --stale-only`) evaluates the same condition on every
  selected asset with `dg.evaluate_automation_conditions` and materializes what it requests, in
  waves, until nothing is requested.
"""

from collections.abc import Iterable

import dagster as dg

from llm_assets.defs.selection import RecordedVersions, own_reasons, with_execution_siblings

# Made by the quarterly loop (schedules.py), not by the sensor.
QUARTERLY_GROUPS = ("feedback", "preferences", "training")
SENSOR_NAME = "out_of_date_assets_sensor"


class OutOfDate(dg.AutomationCondition):
    """True for an asset whose recorded versions say it is out of date itself: never made, made
    with another code version, or an input's data changed since it was made."""

    @property
    def description(self) -> str:
        return "never made, its code version changed, or an input has new data since it was made"

    @property
    def name(self) -> str:
        return "out_of_date"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        recorded = RecordedVersions(context.asset_graph_view.instance)
        reasons = own_reasons(context.asset_graph, recorded, context.key)
        subset = context.candidate_subset if reasons else context.get_empty_subset()
        return dg.AutomationResult(context=context, true_subset=subset)


def out_of_date() -> dg.AutomationCondition:
    """Out of date (or a partition never made), with every input there and nothing of it or its
    inputs running."""
    return (
        (OutOfDate() | dg.AutomationCondition.missing())
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.in_progress()
        & ~dg.AutomationCondition.any_deps_in_progress()
    ).with_label("out of date")


def with_automation(assets: Iterable[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """`assets`, each carrying the out-of-date condition."""
    condition = out_of_date()
    return [
        asset.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=condition))
        for asset in assets
    ]


def out_of_date_assets_sensor() -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        SENSOR_NAME,
        target=dg.AssetSelection.all() - dg.AssetSelection.groups(*QUARTERLY_GROUPS),
        # The condition reads the instance's records in Python, so it runs in the code server.
        use_user_code_server=True,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-makes data and evaluation assets that are out of date (settings, code "
        "or an input changed); fine-tuning waits for the quarterly run.",
    )


def requested_by_automation(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: set[dg.AssetKey]
) -> set[dg.AssetKey]:
    """The assets of `keys` (with what their steps also make) that the condition requests now."""
    result = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=dg.AssetSelection.assets(*keys)
    )
    requested = {key for key in keys if result.get_requested_partitions(key)}
    return with_execution_siblings(defs, requested)
