"""The Dagster layer: assets, checks and resources, built from a profile.

Each stage module declares its own `@dg.definitions` (see `llm_assets.defs.location`);
`build_definitions` merges the same pieces for a profile given in code.
"""

import warnings
from typing import Any

import dagster as dg

from llm_assets.defs.cleaning import build_cleaning_defs
from llm_assets.defs.datasets import build_dataset_defs
from llm_assets.defs.evaluation import build_evaluation_defs
from llm_assets.defs.export import build_export_defs
from llm_assets.defs.feedback import build_feedback_defs
from llm_assets.defs.grounding import build_grounding_defs
from llm_assets.defs.location import executor_for, location_definitions, stage_definitions
from llm_assets.defs.preference_tuning import build_preference_tuning_defs
from llm_assets.defs.preferences import build_preference_defs
from llm_assets.defs.promotion import build_promotion_defs
from llm_assets.defs.rag import build_rag_defs
from llm_assets.defs.sources import build_source_defs
from llm_assets.defs.training import build_training_defs
from llm_assets.settings import Profile

# Data versions on outputs are how unchanged work is skipped; Dagster marks the parameter beta.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

__all__ = ["STAGE_BUILDERS", "build_assets_and_checks", "build_definitions", "executor_for"]

STAGE_BUILDERS = (
    build_source_defs,
    build_feedback_defs,
    build_preference_defs,
    build_cleaning_defs,
    build_dataset_defs,
    build_rag_defs,
    build_training_defs,
    build_preference_tuning_defs,
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


def build_definitions(profile: Profile, resources: dict[str, Any] | None = None) -> dg.Definitions:
    """Every asset, check and resource of `profile`."""
    return dg.Definitions.merge(
        *(stage_definitions(build, profile) for build in STAGE_BUILDERS),
        location_definitions(profile, resources),
    )
