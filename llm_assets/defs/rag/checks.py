"""The rag checks: chunks trace to their records and hold no golden answer, one unit vector per
chunk, and golden questions find their record."""

import dagster as dg
import pandas as pd

from llm_assets.contracts import RagIndex
from llm_assets.rag.chunking import chunks_not_traceable
from llm_assets.rag.embedding_run import embedding_problems
from llm_assets.rag.knowledge import golden_records_in_index
from llm_assets.settings import Profile


def rag_chunks_trace_to_cleaned_records_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="rag_chunks",
        additional_ins={"cleaned_corpus": dg.AssetIn("cleaned_corpus")},
        blocking=True,
        description="Every chunk id is unique and its text is its cleaned record's characters.",
    )
    def rag_chunks_trace_to_cleaned_records(
        rag_chunks: pd.DataFrame, cleaned_corpus: pd.DataFrame
    ) -> dg.AssetCheckResult:
        problems = chunks_not_traceable(rag_chunks, cleaned_corpus)
        return dg.AssetCheckResult(
            passed=not problems,
            description=f"{len(problems)} chunks do not trace to a record",
            metadata={"chunks": len(rag_chunks), "problems": dg.MetadataValue.json(problems[:20])},
        )

    return rag_chunks_trace_to_cleaned_records


def rag_chunks_hold_no_golden_answer_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="rag_chunks",
        additional_ins={"golden_set": dg.AssetIn("golden_set")},
        blocking=True,
        description="No chunk comes from a record a golden pair was answered from (a ticket's "
        "resolution, a FAQ answer): retrieval must not hand evaluation the reference answer.",
    )
    def rag_chunks_hold_no_golden_answer(
        rag_chunks: pd.DataFrame, golden_set: pd.DataFrame
    ) -> dg.AssetCheckResult:
        found = golden_records_in_index(rag_chunks, golden_set)
        return dg.AssetCheckResult(
            passed=not found,
            description=f"{len(found)} chunks cut from golden answer records",
            metadata={"chunks": dg.MetadataValue.json(found[:20])},
        )

    return rag_chunks_hold_no_golden_answer


def rag_embeddings_are_unit_vectors_per_chunk_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="rag_embeddings",
        additional_ins={"rag_chunks": dg.AssetIn("rag_chunks")},
        blocking=True,
        description="One finite unit vector of the model's dimension per chunk, in chunk order.",
    )
    def rag_embeddings_are_unit_vectors_per_chunk(
        context: dg.AssetCheckExecutionContext,
        rag_embeddings: pd.DataFrame,
        rag_chunks: pd.DataFrame,
    ) -> dg.AssetCheckResult:
        event = context.instance.get_latest_materialization_event(dg.AssetKey("rag_embeddings"))
        materialization = event.asset_materialization if event else None
        if materialization is None or "dim" not in materialization.metadata:
            return dg.AssetCheckResult(passed=False, description="rag_embeddings recorded no dim")
        dim = int(materialization.metadata["dim"].value)  # type: ignore[arg-type]
        problems = embedding_problems(rag_embeddings, rag_chunks, dim)
        return dg.AssetCheckResult(
            passed=not problems,
            description="; ".join(problems) or f"{len(rag_embeddings)} unit vectors of dim {dim}",
            metadata={"rows": len(rag_embeddings), "dim": dim},
        )

    return rag_embeddings_are_unit_vectors_per_chunk


def rag_index_recall_check(profile: Profile) -> dg.AssetChecksDefinition:
    floor = profile.rag.min_recall_at_k

    @dg.asset_check(
        asset="rag_index",
        description=f"Golden questions find their record: recall@k at least "
        f"{floor} (rag.min_recall_at_k); warns, does not block.",
    )
    def rag_index_recall_meets_floor(rag_index: RagIndex) -> dg.AssetCheckResult:
        recall = rag_index.recall_at_k
        return dg.AssetCheckResult(
            passed=recall >= floor,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"recall@{rag_index.k} {recall:.3f} against a floor of "
            f"{floor} on {rag_index.golden_queries} golden questions",
            metadata={"recall_at_k": recall, "mrr": rag_index.mrr},
        )

    return rag_index_recall_meets_floor
