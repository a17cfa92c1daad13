"""How the code location is put together, one piece per stage module.

Each stage module of `llm_assets.defs` ends with a `@dg.definitions` function that declares that
stage's assets and checks for the active profile, and this module declares the rest (jobs,
schedules, sensors, resources, executor). `dg.load_from_defs_folder` (what `definitions.py`,
`dagster dev`, `dg list defs` and `dg check defs` load) finds them all; `build_definitions`
merges the same pieces for a profile given in code (the CLI and the tests), so the two can never
differ.
"""

import functools
from collections.abc import Callable
from typing import Any

import dagster as dg

from llm_assets.defs.automation import out_of_date_assets_sensor, with_automation
from llm_assets.defs.resources import default_resources
from llm_assets.defs.schedules import build_automation
from llm_assets.settings import Profile, load_profile

StageBuilder = Callable[[Profile], tuple[list[Any], list[Any]]]


@functools.cache
def active_profile() -> Profile:
    """The profile the code location serves: $LLM_ASSETS_PROFILE, else conf/smollm2.yaml."""
    return load_profile()


def stage_definitions(build: StageBuilder, profile: Profile | None = None) -> dg.Definitions:
    """One stage's assets (each with the out-of-date automation condition) and checks."""
    assets, checks = build(profile or active_profile())
    return dg.Definitions(assets=with_automation(assets), asset_checks=checks)


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


def location_definitions(
    profile: Profile, resources: dict[str, Any] | None = None
) -> dg.Definitions:
    """Jobs, schedules, sensors, resources and executor of `profile`."""
    jobs, schedules, sensors = build_automation(profile)
    return dg.Definitions(
        jobs=jobs,
        schedules=schedules,
        sensors=[*sensors, out_of_date_assets_sensor()],
        resources=resources
        or default_resources(
            experiment_name=profile.tracking.experiment_name,
            feedback_url_env=profile.serving.database_url_env,
        ),
        executor=executor_for(profile),
    )


@dg.definitions
def location() -> dg.Definitions:
    return location_definitions(active_profile())
