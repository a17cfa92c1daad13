"""The bundled all-MiniLM-L6-v2 on both backends: exported once per session into a temp cache."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from llm_assets.rag.embedding import (
    BUNDLED_MODEL,
    EmbeddingModelError,
    SentenceTransformerEmbedder,
    embed_reusing,
    embedder_from_description,
    embedder_identity,
    load_embedder,
    read_vector_store,
    resolve_model,
    text_digest,
    vector_problems,
    write_vector_store,
)
from llm_assets.rag.onnx_int8 import OnnxInt8Embedder

TEXTS = [
    "How do I restore a file I deleted last week?",
    "Sync stops with error 0x80070005 when the folder is on a network drive. " * 8,
    "Refunds for annual plans are pro-rated to the day.",
]


@pytest.fixture(scope="session")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> OnnxInt8Embedder:
    embedder = load_embedder(BUNDLED_MODEL, "onnx-int8", 8, tmp_path_factory.mktemp("onnx"))
    assert isinstance(embedder, OnnxInt8Embedder)
    return embedder


def test_bundled_model_resolves_to_the_installed_package_folder() -> None:
    path = resolve_model(BUNDLED_MODEL)
    assert (path / "model.safetensors").is_file() and (path / "modules.json").is_file()


def test_an_unknown_model_explains_how_to_get_it_offline(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingModelError, match="local Hugging Face cache"):
        resolve_model("no-such-org/no-such-model", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmbeddingModelError, match="holds no model"):
        resolve_model("empty", tmp_path)


def test_onnx_int8_vectors_agree_with_sentence_transformers(
    onnx_embedder: OnnxInt8Embedder,
) -> None:
    reference = SentenceTransformerEmbedder(resolve_model(BUNDLED_MODEL), batch_size=8)
    quantized, exact = onnx_embedder.encode(TEXTS), reference.encode(TEXTS)
    assert quantized.shape == exact.shape == (3, 384)
    assert vector_problems(quantized, 384) == []
    cosines = (quantized * exact).sum(axis=1)
    assert cosines.min() > 0.97, cosines
    # Both tokenize alike, so chunk sizes do not depend on the backend.
    assert onnx_embedder.token_spans(TEXTS[0]) == reference.token_spans(TEXTS[0])
    assert onnx_embedder.max_tokens == reference.max_tokens == 254


def test_onnx_embedder_reloads_from_its_description_with_the_same_vectors(
    onnx_embedder: OnnxInt8Embedder,
) -> None:
    again = embedder_from_description(onnx_embedder.describe())
    np.testing.assert_allclose(again.encode(TEXTS), onnx_embedder.encode(TEXTS), atol=1e-6)
    # Order of the input is kept although batches are formed longest first.
    single = onnx_embedder.encode([TEXTS[2]])
    np.testing.assert_allclose(single[0], onnx_embedder.encode(TEXTS)[2], atol=1e-4)


def test_vector_problems_name_bad_rows() -> None:
    vectors = np.eye(3, 4, dtype=np.float32)
    assert vector_problems(vectors, 4) == []
    assert vector_problems(vectors, 8) == ["shape (3, 4), expected (rows, 8)"]
    vectors[1] = np.nan
    vectors[2] *= 2
    assert vector_problems(vectors, 4) == [
        "1 rows hold NaN or infinite values",
        "2 rows are not unit length (cosine search needs normalized rows)",
    ]


class CountingEncoder:
    """Deterministic unit vectors from each text's bytes, counting what it was asked to encode."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = [
            np.frombuffer(text.ljust(8).encode()[:8], np.uint8).astype(np.float32) for text in texts
        ]
        matrix = np.stack(rows) if rows else np.zeros((0, 8), np.float32)
        return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)


def test_embed_reusing_encodes_only_texts_it_has_not_seen_each_once() -> None:
    encode = CountingEncoder()
    first = embed_reusing(["alpha", "beta", "alpha"], encode, {})
    assert encode.calls == [["alpha", "beta"]]
    assert (first.reused, first.embedded) == (0, 2)
    np.testing.assert_array_equal(first.vectors[0], first.vectors[2])

    stored = dict(zip(first.digests, first.vectors, strict=True))
    second = embed_reusing(["beta", "gamma", "alpha"], encode, stored)
    assert encode.calls[-1] == ["gamma"]
    assert (second.reused, second.embedded) == (2, 1)
    np.testing.assert_array_equal(second.vectors[0], first.vectors[1])
    np.testing.assert_array_equal(second.vectors[2], first.vectors[0])
    np.testing.assert_array_equal(second.vectors[1], encode(["gamma"])[0])


def test_embed_reusing_no_texts_gives_an_empty_matrix_of_the_model_width() -> None:
    embedded = embed_reusing([], CountingEncoder(), {})
    assert embedded.vectors.shape == (0, 8) and embedded.digests == []


def test_vector_store_round_trips_and_keeps_only_this_runs_texts(tmp_path: Path) -> None:
    encode = CountingEncoder()
    path = tmp_path / "vectors.parquet"
    assert read_vector_store(path) == {}
    write_vector_store(path, embed_reusing(["old text"], encode, {}))
    embedded = embed_reusing(["one", "two", "one"], encode, read_vector_store(path))
    write_vector_store(path, embedded)

    stored = read_vector_store(path)
    assert set(stored) == {text_digest("one"), text_digest("two")}
    np.testing.assert_allclose(stored[text_digest("two")], embedded.vectors[1], rtol=0, atol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.parquet"]


def test_embedder_identity_follows_the_model_bytes(
    onnx_embedder: OnnxInt8Embedder, tmp_path: Path
) -> None:
    import shutil

    identity = embedder_identity(onnx_embedder)
    assert identity == embedder_identity(onnx_embedder)
    changed = tmp_path / "export"
    shutil.copytree(onnx_embedder.folder, changed)
    (changed / "extra.txt").write_text("a different export")
    assert embedder_identity(OnnxInt8Embedder(changed, 8)) != identity
