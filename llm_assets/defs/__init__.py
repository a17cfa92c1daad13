"""The Dagster layer: assets, checks and resources, built from a profile."""

import warnings
from typing import Any

import dagster as dg

from llm_assets.defs.cleaning import build_cleaning_defs
from llm_assets.defs.datasets import build_dataset_defs
from llm_assets.defs.evaluation import build_evaluation_defs
from llm_assets.defs.export import build_export_defs
from llm_assets.defs.feedback import build_feedback_defs
from llm_assets.defs.grounding import build_grounding_defs
from llm_assets.defs.preferences import build_preference_defs
from llm_assets.defs.promotion import build_promotion_defs
from llm_assets.defs.rag import build_rag_defs
from llm_assets.defs.resources import default_resources
from llm_assets.defs.schedules import build_automation
from llm_assets.defs.sources import build_source_defs
from llm_assets.defs.training import build_training_defs
from llm_assets.settings import Profile

# Data versions on outputs are how unchanged work is skipped; Dagster marks the parameter beta.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

STAGE_BUILDERS = (
    build_source_defs,
    build_feedback_defs,
    build_preference_defs,
    build_cleaning_defs,
    build_dataset_defs,
    build_rag_defs,
    build_training_defs,
    build_evaluation_defs,
    build_grounding_defs,
    build_promotion_defs,
    build_export_defs,
)


def build_assets_and_checks(profile: Profile) -> tuple[list[Any], list[Any]]:
    assets: list[Any] = []
    checks: list[Any] = []
    for build in STAGE_BUILDERS:
        stage_assets, stage_checks = build(profile)
        assets += stage_assets
        checks += stage_checks
    return assets, checks


def executor_for(profile: Profile) -> dg.ExecutorDefinition:
    """In-process by default: torch and transformers are imported once, not once per step, and on
    a 2-core machine parallel steps would only compete for the same cores
    (benchmarks/bench_pipeline.py measures both)."""
    if profile.execution.executor == "multiprocess":
        return dg.multiprocess_executor.configured(
            {"max_concurrent": profile.execution.max_concurrent}
        )
    if profile.execution.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(
            {
                "max_concurrent": profile.execution.max_concurrent,
                "job_namespace": profile.execution.k8s_namespace,
                "env_secrets": ["llm-assets-secrets"],
            }
        )
    return dg.in_process_executor


def build_definitions(profile: Profile, resources: dict[str, Any] | None = None) -> dg.Definitions:
    """Every asset, check and resource of `profile`."""
    assets, checks = build_assets_and_checks(profile)
    jobs, schedules, sensors = build_automation(profile)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources=resources
        or default_resources(
            experiment_name=profile.tracking.experiment_name,
            feedback_url_env=profile.serving.database_url_env,
        ),
        executor=executor_for(profile),
    )
