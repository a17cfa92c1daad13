"""Group `evaluation`: the tuned model against its base (and the current champion) on the same
held-out conversations; the blinded files for human review and the scores that come back; the
report with the promotion verdict.

`golden_predictions` -> `human_review_scores` -> `judge_scores` -> `eval_report` <- `redteam_report`
"""

from typing import Any

import dagster as dg

from llm_assets.defs.evaluation.eval_report import eval_report_asset
from llm_assets.defs.evaluation.judge import judge_scores_asset
from llm_assets.defs.evaluation.predictions import (
    golden_predictions_asset,
    human_review_scores_asset,
    metric_cache,
)
from llm_assets.defs.location import stage_definitions
from llm_assets.settings import Profile

__all__ = ["build_evaluation_defs", "metric_cache"]


def build_evaluation_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    return (
        [
            golden_predictions_asset(profile),
            human_review_scores_asset(profile),
            judge_scores_asset(profile),
            eval_report_asset(profile),
        ],
        [],
    )


@dg.definitions
def evaluation_definitions() -> dg.Definitions:
    return stage_definitions(build_evaluation_defs)
