"""Group `rag`: chunks of the cleaned corpus, their embeddings, and the searchable index."""

from typing import Any

import dagster as dg

from llm_assets.defs.location import stage_definitions
from llm_assets.defs.rag.assets import rag_chunks_asset, rag_embeddings_asset, rag_index_asset
from llm_assets.defs.rag.checks import (
    rag_chunks_hold_no_golden_answer_check,
    rag_chunks_trace_to_cleaned_records_check,
    rag_embeddings_are_unit_vectors_per_chunk_check,
    rag_index_recall_check,
)
from llm_assets.rag.step import check_rag_sources
from llm_assets.settings import Profile


def build_rag_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    check_rag_sources(profile.rag, [source.name for source in profile.sources])
    return (
        [rag_chunks_asset(profile), rag_embeddings_asset(profile), rag_index_asset(profile)],
        [
            rag_chunks_trace_to_cleaned_records_check(),
            rag_chunks_hold_no_golden_answer_check(),
            rag_embeddings_are_unit_vectors_per_chunk_check(),
            rag_index_recall_check(profile),
        ],
    )


@dg.definitions
def rag_definitions() -> dg.Definitions:
    return stage_definitions(build_rag_defs)
