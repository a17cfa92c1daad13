"""Where chunk vectors are stored and searched: FAISS files by default, pgvector in production.

FAISS (the default) keeps the index in-process: a folder with the FAISS index file and the
chunks as Parquet, written once per run under the artifact store, so every version stays
readable and nothing runs as a server. Up to `ann_min_chunks` chunks the index is exact (a flat
inner-product scan); from there an HNSW graph answers in well under a millisecond at 100k chunks
(benchmarks/bench_rag.py). Vectors are unit length, so inner product is cosine similarity.

pgvector stores the same rows in a Postgres table with an HNSW index (`vector_cosine_ops`),
for a shared production database; the URL comes from an environment variable, never the
profile. A new version is written to a staging table and swapped in by renames inside one
transaction, so readers see the old table or the new one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from llm_assets.contracts import RagIndex

STORE_COLUMNS = ["chunk_id", "record_id", "source", "uri", "heading", "char_start", "char_end"]
_TEXT_COLUMNS = [*STORE_COLUMNS, "text"]
_FAISS_FILE = "vectors.faiss"
_CHUNKS_FILE = "chunks.parquet"
_STORE_FILE = "store.json"


@dataclass(frozen=True)
class RetrievedChunk:
    """One search hit; `score` is the cosine similarity to the query (higher is closer)."""

    chunk_id: str
    record_id: str
    source: str
    uri: str
    heading: str
    text: str
    score: float


class VectorStore(Protocol):
    def search(self, queries: np.ndarray, k: int) -> list[list[RetrievedChunk]]:
        """The `k` closest chunks to each row of `queries` (unit vectors), closest first."""
        ...


class StoreError(RuntimeError):
    """A store that cannot be opened or written; the message names the setting and the fix."""


def write_faiss_store(
    folder: Path,
    chunks: pd.DataFrame,
    vectors: np.ndarray,
    ann_min_chunks: int,
    hnsw_m: int = 32,
    hnsw_ef_search: int = 128,
) -> dict[str, Any]:
    """Write `chunks` (rows aligned with `vectors`) as a FAISS store into `folder`; return what
    `store.json` records."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = int(vectors.shape[1])
    index: Any
    if len(vectors) >= ann_min_chunks:
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        # Build-time breadth: higher costs minutes at 100k chunks for little recall.
        index.hnsw.efConstruction = 80
        kind = "hnsw"
    else:
        index = faiss.IndexFlatIP(dim)
        kind = "flat"
    index.add(vectors)
    faiss.write_index(index, str(folder / _FAISS_FILE))
    chunks[_TEXT_COLUMNS].reset_index(drop=True).to_parquet(folder / _CHUNKS_FILE, index=False)
    info = {
        "kind": "faiss",
        "index": kind,
        "rows": len(vectors),
        "dim": dim,
        "metric": "cosine (inner product of unit vectors)",
        "hnsw_m": hnsw_m if kind == "hnsw" else None,
        "hnsw_ef_search": hnsw_ef_search if kind == "hnsw" else None,
    }
    (folder / _STORE_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


class FaissStore:
    """A FAISS store folder opened for search."""

    def __init__(self, folder: Path) -> None:
        import faiss

        self.folder = Path(folder)
        if not (self.folder / _STORE_FILE).is_file():
            raise StoreError(
                f"{self.folder} is not a FAISS store (no {_STORE_FILE}); materialize rag_index"
            )
        self.info = json.loads((self.folder / _STORE_FILE).read_text(encoding="utf-8"))
        self.index: Any = faiss.read_index(str(self.folder / _FAISS_FILE))
        table = pd.read_parquet(self.folder / _CHUNKS_FILE)
        # Plain lists: building a hit from them is far cheaper than indexing a DataFrame.
        self._columns = {name: table[name].astype(str).tolist() for name in _TEXT_COLUMNS}

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def lexical_documents(self) -> list[str]:
        """Each chunk's heading and text, in row order: what lexical search indexes."""
        columns = self._columns
        return [
            f"{heading}\n{text}" if heading else text
            for heading, text in zip(columns["heading"], columns["text"], strict=True)
        ]

    def chunk_id_at(self, row: int) -> str:
        return self._columns["chunk_id"][row]

    def chunks_at(self, query: np.ndarray, rows: Sequence[int]) -> list[RetrievedChunk]:
        """The chunks at `rows`, each scored by its cosine similarity to `query` (a unit
        vector), as `search` would have scored it."""
        if not rows:
            return []
        vectors = np.vstack([self.index.reconstruct(int(row)) for row in rows])
        scores = vectors @ np.asarray(query, dtype=np.float32).ravel()
        return [self._hit(int(row), float(score)) for row, score in zip(rows, scores, strict=True)]

    def _hit(self, row: int, score: float) -> RetrievedChunk:
        columns = self._columns
        return RetrievedChunk(
            chunk_id=columns["chunk_id"][row],
            record_id=columns["record_id"][row],
            source=columns["source"][row],
            uri=columns["uri"][row],
            heading=columns["heading"][row],
            text=columns["text"][row],
            score=score,
        )

    def search(self, queries: np.ndarray, k: int) -> list[list[RetrievedChunk]]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self.info["index"] == "hnsw":
            self.index.hnsw.efSearch = max(int(self.info["hnsw_ef_search"]), k)
        scores, rows = self.index.search(queries, k)
        return [
            [
                self._hit(int(row), float(score))
                for score, row in zip(query_scores, query_rows, strict=True)
                if row >= 0
            ]
            for query_scores, query_rows in zip(scores, rows, strict=True)
        ]


def libpq_url(sqlalchemy_url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://…) as the plain postgresql:// URL psycopg takes."""
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url)
    if not url.drivername.startswith("postgresql"):
        raise StoreError(f"pgvector needs a postgresql URL, got driver {url.drivername!r}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgvectorStore:
    """A Postgres table of chunks with a `vector` column and an HNSW cosine index."""

    def __init__(self, url: str, table: str, hnsw_ef_search: int = 128) -> None:
        self.conninfo = libpq_url(url)
        self.table = table
        self.hnsw_ef_search = hnsw_ef_search

    @classmethod
    def from_env(cls, url_env: str, table: str, hnsw_ef_search: int = 128) -> PgvectorStore:
        url = os.environ.get(url_env)
        if not url:
            raise StoreError(
                f"rag.store is pgvector but ${url_env} is not set; export it as the SQLAlchemy "
                "URL of the database, e.g. postgresql+psycopg://rag:secret@db:5432/rag"
            )
        return cls(url, table, hnsw_ef_search)

    def _connect(self) -> Any:
        import psycopg
        from pgvector.psycopg import register_vector

        connection = psycopg.connect(self.conninfo)
        register_vector(connection)
        return connection

    def write(self, chunks: pd.DataFrame, vectors: np.ndarray, hnsw_m: int = 32) -> dict[str, Any]:
        """Replace the table's rows with `chunks` and `vectors` in one transaction."""
        import psycopg
        from psycopg import sql

        dim = int(vectors.shape[1])
        staging = f"{self.table}__staging"
        with psycopg.connect(self.conninfo) as connection:
            connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
            connection.commit()
        with self._connect() as connection:
            ident, staged = sql.Identifier(self.table), sql.Identifier(staging)
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staged))
            connection.execute(
                sql.SQL(
                    "CREATE TABLE {} (chunk_id text PRIMARY KEY, record_id text NOT NULL, "
                    "source text NOT NULL, uri text, heading text, char_start integer, "
                    "char_end integer, text text NOT NULL, embedding vector({}) NOT NULL)"
                ).format(staged, sql.Literal(dim))
            )
            columns = sql.SQL(", ").join(sql.Identifier(name) for name in [*_TEXT_COLUMNS])
            copy_sql = sql.SQL("COPY {} ({}, embedding) FROM STDIN WITH (FORMAT BINARY)").format(
                staged, columns
            )
            with connection.cursor().copy(copy_sql) as copy:
                copy.set_types(["text"] * 5 + ["integer"] * 2 + ["text", "vector"])
                for row, vector in zip(
                    chunks[_TEXT_COLUMNS].itertuples(index=False), vectors, strict=True
                ):
                    copy.write_row([*row[:5], int(row[5]), int(row[6]), row[7], vector])
            connection.execute(
                sql.SQL(
                    "CREATE INDEX ON {} USING hnsw (embedding vector_cosine_ops) WITH (m = {})"
                ).format(staged, sql.Literal(hnsw_m))
            )
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
            connection.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(staged, ident))
            connection.commit()
        return {"kind": "pgvector", "index": "hnsw", "rows": len(vectors), "dim": dim}

    def search(self, queries: np.ndarray, k: int) -> list[list[RetrievedChunk]]:
        from psycopg import sql

        query = sql.SQL(
            "SELECT chunk_id, record_id, source, uri, heading, text, "
            "1 - (embedding <=> %(q)s) AS score FROM {} ORDER BY embedding <=> %(q)s LIMIT %(k)s"
        ).format(sql.Identifier(self.table))
        results = []
        with self._connect() as connection:
            connection.execute(
                sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(max(self.hnsw_ef_search, k)))
            )
            for vector in np.atleast_2d(queries).astype(np.float32):
                rows = connection.execute(query, {"q": vector, "k": k}).fetchall()
                results.append(
                    [
                        RetrievedChunk(
                            chunk_id=str(row[0]),
                            record_id=str(row[1]),
                            source=str(row[2]),
                            uri=str(row[3] or ""),
                            heading=str(row[4] or ""),
                            text=str(row[5]),
                            score=float(row[6]),
                        )
                        for row in rows
                    ]
                )
        return results


def open_store(manifest: RagIndex) -> VectorStore:
    """The store a `rag_index` manifest points at."""
    if manifest.store == "faiss" and manifest.path:
        return FaissStore(Path(manifest.path))
    if manifest.store == "pgvector" and manifest.url_env and manifest.table:
        return PgvectorStore.from_env(manifest.url_env, manifest.table, manifest.hnsw_ef_search)
    raise StoreError(f"the rag_index manifest names store {manifest.store!r} without its location")
