"""The rag assets: chunks, their embeddings and the index, each a call of its stage step."""

from functools import partial

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import RagIndex
from llm_assets.defs.check_results import preview
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import ArtifactStoreResource, MlflowResource
from llm_assets.rag.chunk_run import PREVIEW_COLUMNS, run_rag_chunks
from llm_assets.rag.embedding_run import run_rag_embeddings
from llm_assets.rag.index_run import run_rag_index
from llm_assets.settings import Profile


def rag_settings(profile: Profile, asset: str) -> AssetSettings[Profile]:
    # Which sources are knowledge depends on their kinds when rag.sources is empty.
    return AssetSettings(
        profile,
        asset,
        reads=["rag", *(f"sources.{source.name}.kind" for source in profile.sources)],
        runtime=["rag.batch_size"],
        code=["rag", "defs/rag"],
    )


def rag_chunks_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = rag_settings(profile, "rag_chunks")

    @dg.asset(
        group_name="rag",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pandas"},
    )
    def rag_chunks(
        artifacts: ArtifactStoreResource, cleaned_corpus: pd.DataFrame, golden_set: pd.DataFrame
    ) -> dg.Output[pd.DataFrame]:
        """Every cleaned record of the knowledge sources (`rag.sources`, else the documents)
        cut into chunks the embedding model reads whole, leaving out any record a golden pair
        was answered from; `chunk_id` `<source>/<record_id>#<n>` and `char_start:char_end`
        lead back to the record."""
        profile = settings.profile
        knowledge = profile.knowledge_sources()
        run = run_rag_chunks(
            profile.rag, profile.base_dir, knowledge, cleaned_corpus, golden_set, folders=artifacts
        )
        return stage_output(run, preview=preview(run.value, PREVIEW_COLUMNS))

    return rag_chunks


def rag_embeddings_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = rag_settings(profile, "rag_embeddings")

    @dg.asset(
        group_name="rag",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"numpy"},
    )
    def rag_embeddings(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        rag_chunks: pd.DataFrame,
    ) -> dg.Output[pd.DataFrame]:
        """One unit-length vector per chunk (`chunk_id`, `vector`), in `rag_chunks` order.
        Chunks whose text was embedded by the last run, with the same model, keep their vector."""
        profile = settings.profile
        run = run_rag_embeddings(
            profile.rag,
            profile.base_dir,
            rag_chunks,
            folders=artifacts,
            warn=context.log.warning,
        )
        return stage_output(run)

    return rag_embeddings


def rag_index_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = rag_settings(profile, "rag_index")

    @dg.asset(
        group_name="rag",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={profile.rag.store, "mlflow"},
    )
    def rag_index(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        rag_chunks: pd.DataFrame,
        rag_embeddings: pd.DataFrame,
        golden_set: pd.DataFrame,
    ) -> dg.Output[RagIndex]:
        """The searchable store of chunks and vectors, and how well it finds the records of
        golden questions (recall@k, MRR), logged to MLflow. Its value is the manifest
        `retrieve()` and `llm-assets ask` open."""
        profile = settings.profile
        run = run_rag_index(
            profile.rag,
            profile.base_dir,
            rag_chunks,
            rag_embeddings,
            golden_set,
            folders=artifacts,
            run_id=context.run.run_id,
            start_mlflow_run=partial(mlflow.start_run, context),
            mlflow_run_url=mlflow.run_url,
        )
        return stage_output(run)

    return rag_index
