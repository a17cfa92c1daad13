"""Group `training`, after SFT: the challenger, tuned on what users said when there is enough of
it (`llm_assets.training.preference_run`)."""

from functools import partial
from typing import Any

import dagster as dg

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import Adapter, ChatTemplate
from llm_assets.defs.location import stage_definitions
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import (
    READ_PARTITIONS,
    ArtifactStoreResource,
    MlflowResource,
    TrainingLauncherResource,
)
from llm_assets.defs.training import CODE, launch_through_pipes
from llm_assets.settings import Profile, TrainingConfig
from llm_assets.training.adapter_run import MlflowTracking
from llm_assets.training.preference_run import run_preference_tuning


def preference_adapter_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = AssetSettings(
        profile,
        "preference_adapter",
        reads=["preference", "training", "datasets.max_length"],
        runtime=[f"training.{name}" for name in TrainingConfig.LAUNCH_FIELDS],
        code=CODE,
    )

    @dg.asset(
        group_name="training",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pytorch", "mlflow"},
        pool="gpu",
        ins={
            # Every quarter of judged answers so far.
            "preference_dataset": dg.AssetIn(
                partition_mapping=dg.AllPartitionMapping(), metadata={READ_PARTITIONS: "all"}
            )
        },
    )
    def preference_adapter(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        training_launcher: TrainingLauncherResource,
        qlora_adapter: Adapter,
        preference_dataset: Any,
        chat_template: ChatTemplate,
    ) -> dg.Output[Adapter]:
        """The challenger: the SFT adapter tuned on what users said (trl KTO on liked and
        disliked answers, or DPO on corrected and better-rated ones; `preference.method`), over
        the SFT model, trained like `qlora_adapter`. When the feedback so far holds fewer than
        `preference.min_rows` usable rows (or the method is off), it is the SFT adapter itself,
        and the metadata says why."""
        profile = settings.profile
        made = run_preference_tuning(
            profile.preference,
            profile.training,
            profile.datasets,
            qlora_adapter,
            preference_dataset,
            chat_template,
            base_dir=profile.base_dir,
            folders=artifacts,
            run_id=context.run.run_id,
            mlflow=MlflowTracking(
                partial(mlflow.start_run, context), mlflow.resolved_tracking_uri(), mlflow.run_url
            ),
            launch=partial(launch_through_pipes, context, training_launcher),
            log=context.log.info,
        )
        return stage_output(made)

    return preference_adapter


def build_preference_tuning_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    return [preference_adapter_asset(profile)], []


@dg.definitions
def preference_tuning_definitions() -> dg.Definitions:
    return stage_definitions(build_preference_tuning_defs)
