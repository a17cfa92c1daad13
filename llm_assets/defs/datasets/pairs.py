"""The `sft_pairs` and `golden_set` assets of group `datasets`."""

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.datasets.golden_file import golden_file_digest
from llm_assets.datasets.instruction_pairs import run_golden_set, run_sft_pairs
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import ArtifactStoreResource
from llm_assets.settings import Profile

CODE = ["datasets", "defs/datasets"]


# Each asset re-runs only for the settings it reads: a new golden size calls no teacher.
def sft_pairs_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = AssetSettings(
        profile,
        "sft_pairs",
        reads=["datasets.system_prompt", "datasets.templates", "datasets.teacher"],
        runtime=["datasets.teacher.timeout_s", "datasets.teacher.api_key_env"],
        code=CODE,
    )

    @dg.asset(
        group_name="datasets",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pandas"},
    )
    def sft_pairs(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        cleaned_corpus: pd.DataFrame,
    ) -> dg.Output[pd.DataFrame]:
        """Every instruction/response pair the cleaned corpus yields, in chat `messages` form:
        instruction records directly, chats as multi-turn pairs, answered records through their
        answer template, documents through section templates (and a teacher, if configured)."""
        config = settings.profile.datasets
        run = run_sft_pairs(cleaned_corpus, config, artifacts.work_dir, context.log.warning)
        return stage_output(run)

    return sft_pairs


def golden_set_asset(profile: Profile) -> dg.AssetsDefinition:
    golden_reads = (
        "golden_file",
        "golden_size",
        "seed",
        "leak_threshold",
        "golden_file_mode",
        "system_prompt",
    )
    settings = AssetSettings(
        profile,
        "golden_set",
        reads=[f"datasets.{name}" for name in golden_reads],
        code=CODE,
        extra=golden_file_digest(profile.golden_path()),
    )

    @dg.asset(
        group_name="datasets",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pandas"},
    )
    def golden_set(sft_pairs: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        """The evaluation hold-out: sampled pairs stratified by source and task, whole leak
        groups at a time, and the rows of `datasets.golden_file` if one is set; never trained
        on."""
        masked = settings.profile
        return stage_output(run_golden_set(sft_pairs, masked.datasets, masked.golden_path()))

    return golden_set
