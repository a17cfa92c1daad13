"""Group `cleaning`: the cleaned corpus and the ledger that accounts for every input record."""

from typing import Any

import dagster as dg

from llm_assets.defs.cleaning.assets import cleaning_asset
from llm_assets.defs.cleaning.checks import (
    cleaned_corpus_has_no_pii_check,
    ledger_check,
    well_formed_check,
)
from llm_assets.defs.location import stage_definitions
from llm_assets.settings import Profile


def build_cleaning_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    return (
        [cleaning_asset(profile)],
        [ledger_check(profile), cleaned_corpus_has_no_pii_check(), well_formed_check(profile)],
    )


@dg.definitions
def cleaning_definitions() -> dg.Definitions:
    return stage_definitions(build_cleaning_defs)
