"""Group `datasets`: instruction pairs, the golden hold-out, the train/validation SFT dataset with
its ledger, exported files and the chat template training must use."""

from typing import Any

import dagster as dg

from llm_assets.defs.datasets.checks import (
    dataset_ledger_accounts_for_every_pair_check,
    golden_exclusion_check,
    golden_set_rows_are_well_formed_check,
    sft_dataset_renders_like_serving_check,
    sft_dataset_rows_check,
    sft_pairs_rows_are_well_formed_check,
)
from llm_assets.defs.datasets.pairs import golden_set_asset, sft_pairs_asset
from llm_assets.defs.datasets.sft_dataset import sft_dataset_asset
from llm_assets.defs.location import stage_definitions
from llm_assets.settings import Profile


def build_dataset_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    return (
        [sft_pairs_asset(profile), golden_set_asset(profile), sft_dataset_asset(profile)],
        [
            sft_pairs_rows_are_well_formed_check(),
            golden_set_rows_are_well_formed_check(),
            sft_dataset_rows_check(profile),
            golden_exclusion_check(profile),
            dataset_ledger_accounts_for_every_pair_check(),
            sft_dataset_renders_like_serving_check(),
        ],
    )


@dg.definitions
def datasets_definitions() -> dg.Definitions:
    return stage_definitions(build_dataset_defs)
