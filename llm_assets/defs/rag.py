"""Group `rag`: chunks of the cleaned corpus, their embeddings, and the searchable index."""

import hashlib
import time
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import RagIndex
from llm_assets.defs.check_results import preview
from llm_assets.defs.resources import ArtifactStoreResource, MlflowResource
from llm_assets.rag.chunking import chunk_records, chunks_not_traceable, text_to_embed
from llm_assets.rag.embedding import (
    Embedder,
    embed_reusing,
    embedder_identity,
    load_embedder,
    read_vector_store,
    vector_problems,
    vectors_digest,
    write_vector_store,
)
from llm_assets.rag.knowledge import golden_records_in_index, knowledge_records
from llm_assets.settings import Profile, ProfileError
from llm_assets.storage import frame_digest


def _embedder(profile: Profile, artifacts: ArtifactStoreResource) -> Embedder:
    config = profile.rag
    embedder = load_embedder(
        config.embedding_model,
        config.embedding_backend,
        config.batch_size,
        cache_root=artifacts.work_dir("rag_embedder", config.embedding_backend),
        base_dir=profile.base_dir,
    )
    if config.window_tokens > embedder.max_tokens:
        raise ValueError(
            f"rag.window_tokens is {config.window_tokens} but {config.embedding_model} reads at "
            f"most {embedder.max_tokens} tokens of text; lower rag.window_tokens"
        )
    return embedder


def _stacked(embeddings: pd.DataFrame) -> np.ndarray:
    if embeddings.empty:
        return np.zeros((0, 0), np.float32)
    return np.stack([np.asarray(v, np.float32) for v in embeddings["vector"]])


def build_rag_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    config = profile.rag

    def rag_settings(asset: str) -> AssetSettings[Profile]:
        # Which sources are knowledge depends on their kinds when rag.sources is empty.
        return AssetSettings(
            profile,
            asset,
            reads=["rag", *(f"sources.{source.name}.kind" for source in profile.sources)],
            runtime=["rag.batch_size"],
            code=["rag", "defs/rag.py"],
        )

    chunks_settings = rag_settings("rag_chunks")
    embeddings_settings = rag_settings("rag_embeddings")
    index_settings = rag_settings("rag_index")
    unknown = sorted(set(config.sources) - {source.name for source in profile.sources})
    if unknown:
        raise ProfileError(
            f"rag.sources names {unknown}, which are not sources of this profile; use names "
            f"from sources: {[source.name for source in profile.sources]}"
        )

    @dg.asset(
        group_name="rag",
        code_version=chunks_settings.code_version,
        metadata=chunks_settings.metadata(),
        kinds={"pandas"},
    )
    def rag_chunks(
        artifacts: ArtifactStoreResource, cleaned_corpus: pd.DataFrame, golden_set: pd.DataFrame
    ) -> dg.Output[pd.DataFrame]:
        """Every cleaned record of the knowledge sources (`rag.sources`, else the documents)
        cut into chunks the embedding model reads whole, leaving out any record a golden pair
        was answered from; `chunk_id` `<source>/<record_id>#<n>` and `char_start:char_end`
        lead back to the record."""
        profile = chunks_settings.profile
        config = profile.rag
        embedder = _embedder(profile, artifacts)
        indexed = knowledge_records(cleaned_corpus, golden_set, profile.knowledge_sources())
        chunks = chunk_records(
            indexed,
            config.chunking,
            embedder.token_spans,
            config.window_tokens,
            config.overlap_tokens,
        )
        return dg.Output(
            chunks,
            data_version=dg.DataVersion(frame_digest(chunks)),
            metadata={
                "dagster/row_count": len(chunks),
                "records": int(chunks[["source", "record_id"]].drop_duplicates().shape[0]),
                "strategy": config.chunking,
                "window_tokens": config.window_tokens,
                "tokens_mean": float(round(chunks["tokens"].mean(), 1)) if len(chunks) else 0.0,
                "by_source": dg.MetadataValue.json(chunks.groupby("source").size().to_dict()),
                "preview": preview(chunks, ["chunk_id", "heading", "tokens", "text"]),
            },
        )

    @dg.asset(
        group_name="rag",
        code_version=embeddings_settings.code_version,
        metadata=embeddings_settings.metadata(),
        kinds={"numpy"},
    )
    def rag_embeddings(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        rag_chunks: pd.DataFrame,
    ) -> dg.Output[pd.DataFrame]:
        """One unit-length vector per chunk (`chunk_id`, `vector`), in `rag_chunks` order.
        Chunks whose text was embedded by the last run, with the same model, keep their vector."""
        profile = embeddings_settings.profile
        config = profile.rag
        embedder = _embedder(profile, artifacts)
        texts = [
            text_to_embed(heading, text)
            for heading, text in zip(rag_chunks["heading"], rag_chunks["text"], strict=True)
        ]
        store_path = artifacts.work_dir("rag_embeddings", embedder_identity(embedder))
        store_path = store_path / "vectors.parquet"
        try:
            stored = read_vector_store(store_path)
        except Exception as error:  # a damaged store only costs re-embedding
            context.log.warning(f"ignoring the stored vectors in {store_path}: {error}")
            stored = {}
        started = time.perf_counter()
        embedded = embed_reusing(texts, embedder.encode, stored)
        seconds = time.perf_counter() - started
        vectors = embedded.vectors
        write_vector_store(store_path, embedded)
        frame = pd.DataFrame({"chunk_id": rag_chunks["chunk_id"], "vector": list(vectors)})
        ids = hashlib.sha256("\n".join(frame["chunk_id"]).encode()).hexdigest()[:8]
        return dg.Output(
            frame,
            data_version=dg.DataVersion(f"{vectors_digest(vectors)}-{ids}"),
            metadata={
                "dagster/row_count": len(frame),
                "dim": embedder.dim,
                "model": config.embedding_model,
                "backend": embedder.backend,
                "seconds": round(seconds, 2),
                "embedded": embedded.embedded,
                "reused": embedded.reused,
                "embedded_per_second": round(embedded.embedded / seconds, 1) if seconds else 0.0,
            },
        )

    @dg.asset(
        group_name="rag",
        code_version=index_settings.code_version,
        metadata=index_settings.metadata(),
        kinds={config.store, "mlflow"},
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
        import mlflow as mlflow_client

        from llm_assets.rag.index import FaissStore, PgvectorStore, write_faiss_store
        from llm_assets.rag.retrieval import Retriever, evaluate_retrieval

        profile = index_settings.profile
        config = profile.rag
        vectors = _stacked(rag_embeddings)
        store: Any
        if config.store == "pgvector":
            store = PgvectorStore.from_env(
                config.pgvector_url_env, config.pgvector_table, config.hnsw_ef_search
            )
            info = store.write(rag_chunks, vectors, config.hnsw_m)
            location: dict[str, Any] = {
                "url_env": config.pgvector_url_env,
                "table": config.pgvector_table,
            }
        else:
            run_id = context.run.run_id
            with artifacts.new_folder("rag_index", run_id) as folder:
                info = write_faiss_store(
                    folder,
                    rag_chunks,
                    vectors,
                    config.ann_min_chunks,
                    config.hnsw_m,
                    config.hnsw_ef_search,
                )
            path = artifacts.folder("rag_index", run_id)
            store = FaissStore(path)
            location = {"path": str(path)}
        embedder = _embedder(profile, artifacts)
        indexed = set(rag_chunks["source"] + "/" + rag_chunks["record_id"])
        quality = evaluate_retrieval(Retriever(store, embedder), golden_set, config.eval_k, indexed)
        k = config.eval_k
        with mlflow.start_run(context, f"rag-index-{context.run.run_id[:8]}") as run:
            mlflow_client.log_params(
                {f"rag.{key}": value for key, value in config.model_dump(mode="json").items()}
            )
            mlflow_client.log_metrics(
                {
                    f"recall_at_{k}": quality.recall_at_k,
                    f"mrr_at_{k}": quality.mrr,
                    "golden_queries": quality.queries,
                    "golden_unjudged": quality.unjudged,
                    "chunks": len(rag_chunks),
                    **{
                        f"{source}.recall_at_{k}": scores["recall_at_k"]
                        for source, scores in quality.by_source.items()
                    },
                }
            )
            run_url = mlflow.run_url(run)
        manifest = RagIndex(
            store=config.store,
            **location,
            index=info["index"],
            chunks=info["rows"],
            dim=info["dim"],
            model=config.embedding_model,
            embedder=embedder.describe(),
            hnsw_ef_search=config.hnsw_ef_search,
            k=k,
            recall_at_k=quality.recall_at_k,
            mrr=quality.mrr,
            golden_queries=quality.queries,
            mlflow_run_id=run.info.run_id,
        )
        misses = quality.misses.head(10)
        return dg.Output(
            manifest,
            metadata={
                "dagster/row_count": info["rows"],
                "store": config.store,
                "index": info["index"],
                "dim": info["dim"],
                "model": config.embedding_model,
                "backend": embedder.backend,
                **({"path": dg.MetadataValue.path(location["path"])} if "path" in location else {}),
                f"recall_at_{k}": round(quality.recall_at_k, 4),
                f"mrr_at_{k}": round(quality.mrr, 4),
                "golden_queries": quality.queries,
                "golden_unjudged": dg.MetadataValue.int(quality.unjudged),
                "by_source": dg.MetadataValue.json(quality.by_source),
                "missed_questions": dg.MetadataValue.md(
                    misses.assign(query=misses["query"].str.slice(0, 80)).to_markdown(index=False)
                    if len(misses)
                    else "every golden question found its record"
                ),
                "mlflow_run": dg.MetadataValue.url(run_url),
            },
        )

    @dg.asset_check(
        asset=rag_chunks,
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

    @dg.asset_check(
        asset=rag_chunks,
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

    @dg.asset_check(
        asset=rag_embeddings,
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
        problems = []
        if rag_embeddings["chunk_id"].tolist() != rag_chunks["chunk_id"].tolist():
            problems.append("chunk ids differ from rag_chunks (missing, extra or reordered)")
        lengths = {len(vector) for vector in rag_embeddings["vector"]}
        if lengths - {dim}:
            problems.append(f"vector lengths {sorted(lengths)}, expected {dim}")
        else:
            problems += vector_problems(_stacked(rag_embeddings), dim)
        return dg.AssetCheckResult(
            passed=not problems,
            description="; ".join(problems) or f"{len(rag_embeddings)} unit vectors of dim {dim}",
            metadata={"rows": len(rag_embeddings), "dim": dim},
        )

    @dg.asset_check(
        asset=rag_index,
        description=f"Golden questions find their record: recall@k at least "
        f"{config.min_recall_at_k} (rag.min_recall_at_k); warns, does not block.",
    )
    def rag_index_recall_meets_floor(rag_index: RagIndex) -> dg.AssetCheckResult:
        recall = rag_index.recall_at_k
        return dg.AssetCheckResult(
            passed=recall >= config.min_recall_at_k,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"recall@{rag_index.k} {recall:.3f} against a floor of "
            f"{config.min_recall_at_k} on {rag_index.golden_queries} golden questions",
            metadata={"recall_at_k": recall, "mrr": rag_index.mrr},
        )

    return (
        [rag_chunks, rag_embeddings, rag_index],
        [
            rag_chunks_trace_to_cleaned_records,
            rag_chunks_hold_no_golden_answer,
            rag_embeddings_are_unit_vectors_per_chunk,
            rag_index_recall_meets_floor,
        ],
    )
