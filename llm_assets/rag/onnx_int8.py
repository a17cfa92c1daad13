"""The `onnx-int8` backend: a sentence-transformers model's transformer exported once to ONNX
with int8 weights (ONNX Runtime dynamic quantization), run by ONNX Runtime with the model's own
pooling. Loading an export imports neither torch nor sentence-transformers."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llm_assets.rag.embedding import EmbeddingModelError, offsets_tokenizer, token_offsets
from llm_assets.storage import atomic_directory, folder_digest

# Bumped when the export below changes, so cached exports are redone.
ONNX_EXPORT_VERSION = "2"
_ONNX_FILE = "model_int8.onnx"
_SPEC_FILE = "embedder.json"
# tokenizers' Encoding attribute for each transformer input name.
_ENCODING_FIELDS = {
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}


def _pooling_mode(pooling: Any) -> str:
    config = pooling.get_config_dict()
    if "pooling_mode" in config:
        return str(config["pooling_mode"])
    # sentence-transformers before 6 kept one flag per mode.
    for mode in ("cls", "max", "mean"):
        if config.get(f"pooling_mode_{mode}_tokens") or config.get(f"pooling_mode_{mode}_token"):
            return mode
    return "unknown"


def export_onnx_int8(model_path: Path, folder: Path) -> None:
    """Write the model's transformer as int8 ONNX, its tokenizer and its pooling into `folder`.

    Only Transformer -> Pooling (mean, cls or max) [-> Normalize] models are exported; others
    need backend `torch`. Weights are quantized per channel to 7 bits (`reduce_range`): CPUs
    without VNNI saturate on full 8-bit weights, which cost recall in our measurements. One
    MatMul stays fp32 (see `first_down_projection`)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), device="cpu")
    kinds = [type(module).__name__ for module in model]
    if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"}:
        raise EmbeddingModelError(
            f"{model_path}: modules {kinds} cannot run on backend onnx-int8 (it supports "
            "Transformer, Pooling and Normalize); set rag.embedding_backend: torch"
        )
    pooling = _pooling_mode(model[1])
    if pooling not in ("mean", "cls", "max"):
        raise EmbeddingModelError(
            f"{model_path}: pooling {pooling!r} is not supported by backend onnx-int8 (mean, cls "
            "or max); set rag.embedding_backend: torch"
        )
    transformer = model[0].auto_model.eval()
    tokenizer = model.tokenizer
    names = [name for name in tokenizer.model_input_names if name in _ENCODING_FIELDS]
    sample = tokenizer(
        ["an example", "a longer example sentence"], padding=True, return_tensors="pt"
    )

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.transformer(**dict(zip(names, inputs, strict=True))).last_hidden_state

    fp32 = folder / "model_fp32.onnx"
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: it needs only `onnx`, where the dynamo one needs onnxscript.
        torch.onnx.export(
            TokenEmbeddings(),
            tuple(sample[name] for name in names),
            str(fp32),
            input_names=names,
            output_names=["token_embeddings"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "token_embeddings"]},
            opset_version=17,
            dynamo=False,
        )
    kept_fp32 = first_down_projection(fp32)
    # Its advice to pre-process the graph arrives as a root-logger warning on every export.
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(fp32),
            str(folder / _ONNX_FILE),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            nodes_to_exclude=kept_fp32,
        )
    finally:
        root_logger.setLevel(level)
    fp32.unlink()
    (folder / "tokenizer.json").write_text(tokenizer.backend_tokenizer.to_str(), encoding="utf-8")
    spec = {
        "source_model": str(model_path),
        "inputs": names,
        "pooling": pooling,
        "max_seq_length": int(model.max_seq_length or 0),
        "pad_token_id": int(tokenizer.pad_token_id or 0),
        "pad_token": str(tokenizer.pad_token or "[PAD]"),
        "dim": int(model.get_embedding_dimension() or 0),
        "export_version": ONNX_EXPORT_VERSION,
    }
    (folder / _SPEC_FILE).write_text(json.dumps(spec, indent=2), encoding="utf-8")


def first_down_projection(onnx_path: Path) -> list[str]:
    """The first MatMul whose weight narrows the width (the first layer's feed-forward output,
    e.g. 1536 -> 384), as a one-item list, or [] when there is none.

    Its input, the first layer's activations after GELU, holds outliers that one int8 scale per
    tensor flattens: quantizing it cost 3.7 points of recall@5 in benchmarks/bench_rag.py, and
    keeping this one MatMul in fp32 won them back for about 2% of the speed.
    """
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    weights = {tensor.name: list(tensor.dims) for tensor in model.graph.initializer}
    for node in model.graph.node:
        shape = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if shape and len(shape) == 2 and shape[0] > shape[1]:
            return [node.name]
    return []


def onnx_int8_folder(model_path: Path, cache_root: Path) -> Path:
    """The int8 export of `model_path` under `cache_root`, made once per model content."""
    digest = hashlib.sha256(
        f"{folder_digest(model_path)}-{ONNX_EXPORT_VERSION}".encode()
    ).hexdigest()[:16]
    folder = cache_root / f"{Path(model_path).name}-{digest}"
    if (folder / _SPEC_FILE).is_file():
        return folder
    try:
        with atomic_directory(folder) as temporary:
            export_onnx_int8(Path(model_path), temporary)
    except (FileExistsError, OSError):
        # Another process finished the same export first; theirs is as good as ours.
        if not (folder / _SPEC_FILE).is_file():
            raise
    return folder


class OnnxInt8Embedder:
    """The int8 ONNX export run by ONNX Runtime, pooled and normalized (backend `onnx-int8`).

    One text per call, texts spread over one worker thread per core. Dynamic quantization
    scales activations over the whole input tensor, so a padded batch would make a text's vector
    depend on its batch neighbours; one at a time, it is the same in any batch, and no time is
    spent on padding. Single-threaded runs, side by side, also stay fast when other processes
    share the cores, where ONNX Runtime's spinning intra-op threads lose half their speed.
    """

    backend = "onnx-int8"

    def __init__(self, folder: Path, batch_size: int = 16, workers: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.batch_size = batch_size
        self.workers = workers or _available_cores()
        self.spec = json.loads((self.folder / _SPEC_FILE).read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # A session may be run from several threads at once; each run uses one core.
        self.session = ort.InferenceSession(
            str(self.folder / _ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )
        tokenizer_json = (self.folder / "tokenizer.json").read_text(encoding="utf-8")
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(self.spec["max_seq_length"]))
        self._counter = offsets_tokenizer(tokenizer_json)
        special = len(self._counter.encode("", add_special_tokens=True).ids)
        self.dim = int(self.spec["dim"])
        self.max_tokens = int(self.spec["max_seq_length"]) - special

    def _encode_one(self, text: str) -> np.ndarray:
        encoding = self.tokenizer.encode(text)
        feed = {
            name: np.array([getattr(encoding, _ENCODING_FIELDS[name])], np.int64)
            for name in self.spec["inputs"]
        }
        tokens = self.session.run(None, feed)[0][0]
        pooling = self.spec["pooling"]
        if pooling == "cls":
            pooled = tokens[0]
        elif pooling == "max":
            pooled = tokens.max(axis=0)
        else:
            pooled = tokens.mean(axis=0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), np.float32)
        if len(texts) <= 1 or self.workers == 1:
            for row, text in enumerate(texts):
                vectors[row] = self._encode_one(text)
            return vectors
        from concurrent.futures import ThreadPoolExecutor

        # ONNX Runtime releases the GIL while it runs, so threads use every core.
        with ThreadPoolExecutor(self.workers) as pool:
            for row, vector in enumerate(pool.map(self._encode_one, texts)):
                vectors[row] = vector
        return vectors

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return token_offsets(self._counter, text)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model_path": str(self.spec["source_model"]),
            "onnx_folder": str(self.folder),
            "batch_size": self.batch_size,
        }


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
