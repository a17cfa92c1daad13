"""The `sft_dataset_splits` multi-asset of group `datasets`: the SFT dataset, its ledger and the
chat template training must apply."""

from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import BaseModelFolder, RagIndex
from llm_assets.datasets.sft_dataset_run import run_sft_dataset
from llm_assets.defs.datasets.pairs import CODE
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import ArtifactStoreResource
from llm_assets.settings import Profile

# Output name -> (kind, description).
OUTPUTS = {
    "sft_dataset": (
        "huggingface",
        "`datasets.DatasetDict` with `train` and `validation`: golden pairs "
        "and their near duplicates excluded, rows over max_length tokens dropped whole.",
    ),
    "dataset_ledger": (
        "pandas",
        "One row per pair (kept, held out, or dropped and why) and per "
        "cleaned record that yielded no pair.",
    ),
    "chat_template": (
        "jinja",
        "The chat template the dataset was measured with, that training "
        "applies and saves with the adapter: the base tokenizer's own, else ChatML.",
    ),
}


def sft_dataset_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = AssetSettings(
        profile,
        "sft_dataset",
        reads=[
            "datasets",
            "redteam.canaries",
            "redteam.canary_copies",
            "cleaning.quality.languages",
        ],
        code=CODE,
    )

    @dg.multi_asset(
        name="sft_dataset_splits",
        group_name="datasets",
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
    def sft_dataset_splits(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        cleaned_corpus: pd.DataFrame,
        sft_pairs: pd.DataFrame,
        golden_set: pd.DataFrame,
        base_model: BaseModelFolder,
        rag_index: RagIndex,
    ) -> Any:
        run = run_sft_dataset(
            settings.profile,
            cleaned_corpus,
            sft_pairs,
            golden_set,
            base_model,
            rag_index,
            artifacts,
            context.run.run_id,
        )
        yield stage_output(run.sft_dataset, output_name="sft_dataset")
        yield stage_output(run.dataset_ledger, output_name="dataset_ledger")
        yield stage_output(run.chat_template, output_name="chat_template")

    return sft_dataset_splits
