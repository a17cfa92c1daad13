"""Checks of group `datasets`: well-formed rows, no golden pair in training, a ledger that
accounts for every pair, and a chat template that renders as serving does."""

from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.contracts import BaseModelFolder, ChatTemplate
from llm_assets.datasets.dataset_checks import (
    dataset_ledger_check,
    golden_leak_check,
    serving_render_check,
    split_rows,
    well_formed_rows,
)
from llm_assets.defs.check_results import to_check_result
from llm_assets.defs.datasets.output import as_check_result
from llm_assets.settings import Profile

WELL_FORMED = (
    "Rows have a prompt, a non-empty bounded answer as the last turn, and no PII patterns."
)


def sft_pairs_rows_are_well_formed_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(asset="sft_pairs", blocking=True, description=WELL_FORMED)
    def sft_pairs_rows_are_well_formed(sft_pairs: pd.DataFrame) -> dg.AssetCheckResult:
        return to_check_result(well_formed_rows(sft_pairs, "sft_pairs"), rows=len(sft_pairs))

    return sft_pairs_rows_are_well_formed


def golden_set_rows_are_well_formed_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(asset="golden_set", blocking=True, description=WELL_FORMED)
    def golden_set_rows_are_well_formed(golden_set: pd.DataFrame) -> dg.AssetCheckResult:
        return to_check_result(well_formed_rows(golden_set, "golden_set"), rows=len(golden_set))

    return golden_set_rows_are_well_formed


def sft_dataset_rows_check(profile: Profile) -> dg.AssetChecksDefinition:
    max_length = profile.datasets.max_length

    @dg.asset_check(
        asset="sft_dataset",
        blocking=True,
        description=f"{WELL_FORMED} Every row within datasets.max_length tokens.",
    )
    def sft_dataset_rows_are_well_formed(sft_dataset: Any) -> dg.AssetCheckResult:
        frame = split_rows(sft_dataset)
        return to_check_result(well_formed_rows(frame, "sft_dataset", max_length), rows=len(frame))

    return sft_dataset_rows_are_well_formed


# On sft_dataset, not golden_set: sft_dataset is built after golden_set, and a blocking check
# on golden_set that read sft_dataset would make the graph circular.
def golden_exclusion_check(profile: Profile) -> dg.AssetChecksDefinition:
    threshold = profile.datasets.leak_threshold

    @dg.asset_check(
        asset="sft_dataset",
        additional_ins={"golden_set": dg.AssetIn("golden_set")},
        blocking=True,
        description="No golden prompt or answer appears in train or validation, exactly or as a "
        f"near duplicate (estimated Jaccard >= {threshold}).",
    )
    def sft_dataset_excludes_golden_set(
        sft_dataset: Any, golden_set: pd.DataFrame
    ) -> dg.AssetCheckResult:
        return as_check_result(golden_leak_check(sft_dataset, golden_set, threshold))

    return sft_dataset_excludes_golden_set


def dataset_ledger_accounts_for_every_pair_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="dataset_ledger",
        additional_ins={
            name: dg.AssetIn(name)
            for name in ("cleaned_corpus", "sft_pairs", "golden_set", "sft_dataset")
        },
        blocking=True,
        description="Every cleaned record and every pair has one ledger row, and the kept and "
        "held-out rows are exactly what sft_dataset and golden_set store.",
    )
    def dataset_ledger_accounts_for_every_pair(
        dataset_ledger: pd.DataFrame,
        cleaned_corpus: pd.DataFrame,
        sft_pairs: pd.DataFrame,
        golden_set: pd.DataFrame,
        sft_dataset: Any,
    ) -> dg.AssetCheckResult:
        return as_check_result(
            dataset_ledger_check(dataset_ledger, cleaned_corpus, sft_pairs, golden_set, sft_dataset)
        )

    return dataset_ledger_accounts_for_every_pair


def sft_dataset_renders_like_serving_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="sft_dataset",
        additional_ins={"chat_template": dg.AssetIn("chat_template"), "base_model": dg.AssetIn()},
        blocking=True,
        description="Sample rows rendered with the template saved beside the dataset and with "
        "the base tokenizer as serving loads it give the same text, token ids and token counts.",
    )
    def sft_dataset_renders_like_serving(
        sft_dataset: Any, chat_template: ChatTemplate, base_model: BaseModelFolder
    ) -> dg.AssetCheckResult:
        return as_check_result(serving_render_check(sft_dataset, chat_template, base_model))

    return sft_dataset_renders_like_serving
