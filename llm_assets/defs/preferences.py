"""Group `feedback`, preference side: each quarter's judged answers as KTO rows and DPO pairs,
with a ledger row for every answer."""

from typing import Any

import dagster as dg

from llm_assets.code_versions import AssetSettings
from llm_assets.datasets.preference_run import preference_ledger_check, run_preferences
from llm_assets.defs.datasets.output import as_check_result
from llm_assets.defs.feedback import quarters
from llm_assets.defs.location import stage_definitions
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import FeedbackStoreResource
from llm_assets.settings import Profile

OUTPUTS = {
    "preference_dataset": (
        "huggingface",
        "The quarter's judged answers as preference data: `kto` rows "
        "(prompt, completion, label: liked or corrected True, disliked or replaced by "
        "a correction False) and `dpo` pairs (prompt, chosen, rejected: a correction "
        "over the served answer, or a liked over a disliked answer to the same "
        "question), the prompt rendered as SFT renders it.",
    ),
    "preference_ledger": (
        "pandas",
        "One row per answer judged in the quarter: the rows and pairs it "
        "became, or the `preference.*` reason it became none.",
    ),
}


def preferences_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = AssetSettings(
        profile,
        "preference_dataset",
        reads=[
            "feedback.min_rating_kept",
            "datasets.system_prompt",
            "datasets.templates.conversation",
            "cleaning.redact_pii",
            "cleaning.pii_entities",
            "cleaning.pii_allow_list",
        ],
        code=[
            "datasets/preferences.py",
            "datasets/preference_run.py",
            "datasets/outputs.py",
            "stage_output.py",
            "sources/feedback.py",
            "defs/preferences.py",
        ],
    )

    @dg.multi_asset(
        name="preferences",
        group_name="feedback",
        partitions_def=quarters(profile.feedback),
        outs={
            name: dg.AssetOut(
                code_version=settings.code_version,
                metadata=settings.metadata(),
                kinds={kind},
                description=description,
            )
            for name, (kind, description) in OUTPUTS.items()
        },
    )
    def preferences(
        context: dg.AssetExecutionContext, feedback_store: FeedbackStoreResource
    ) -> Any:
        from llm_assets.serving.store import read_feedback

        window = context.partition_time_window
        rows = read_feedback(feedback_store.engine(), window.start, window.end)
        run = run_preferences(
            settings.profile, rows, context.partition_key, window.start, window.end
        )
        yield stage_output(run.preference_dataset, output_name="preference_dataset")
        yield stage_output(run.preference_ledger, output_name="preference_ledger")

    return preferences


@dg.asset_check(
    asset="preference_ledger",
    additional_ins={"preference_dataset": dg.AssetIn("preference_dataset")},
    blocking=True,
    description="One ledger row per judged answer, and the rows and pairs it counts are "
    "exactly those preference_dataset holds (every materialized quarter).",
)
def preference_ledger_accounts_for_every_answer(
    preference_ledger: Any, preference_dataset: Any
) -> dg.AssetCheckResult:
    return as_check_result(preference_ledger_check(preference_ledger, preference_dataset))


def build_preference_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    return [preferences_asset(profile)], [preference_ledger_accounts_for_every_answer]


@dg.definitions
def preferences_definitions() -> dg.Definitions:
    return stage_definitions(build_preference_defs)
