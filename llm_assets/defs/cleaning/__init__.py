"""Group `cleaning`: the cleaned corpus and the ledger that accounts for every input record."""

from typing import Any

from llm_assets.defs.cleaning.assets import cleaning_asset
from llm_assets.defs.cleaning.checks import (
    cleaned_corpus_has_no_pii,
    ledger_check,
    well_formed_check,
)
from llm_assets.settings import Profile


def build_cleaning_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    return (
        [cleaning_asset(profile)],
        [ledger_check(profile), cleaned_corpus_has_no_pii, well_formed_check(profile)],
    )
