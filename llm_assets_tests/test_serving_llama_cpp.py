"""The gateway in front of a llama.cpp engine process (serving.engine: llama-cpp), on a GGUF
export of a tiny Llama built for this module: 8 concurrent streams each finish with their own
complete answer, a full queue is refused with 503 and Retry-After, and the engine process is
started behind a key and stopped with the gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from llm_assets.settings import GenerationConfig, ServingConfig

pytest.importorskip(
    "llama_cpp.server", reason="llama-cpp-python[server] is installed by make setup"
)

from llm_assets.serving.app import create_app  # noqa: E402
from llm_assets.serving.llama_cpp_server import LlamaCppServerEngine  # noqa: E402
from llm_assets.serving.models import ServedModel, served_from_folder  # noqa: E402
from llm_assets.serving.store import ExchangeStore, Redactor, open_database  # noqa: E402

from .conftest import save_tiny_llama, serving_in_thread  # noqa: E402

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Greedy (the serving default), so an answer is the same alone or among others. With seed 0 or
# 1 this random model makes llama-cpp-python's greedy create_completion fail on some prompts
# ("llama_decode returned 1"; SmolLM2 does not): seed 2 does not.
TINY_SEED = 2
QUESTIONS = [
    "How do I restore a deleted file?",
    "Why does selective sync keep folders local?",
    "Where is the trash?",
    "Can I pause sync?",
    "Restore the folder, please.",
    "Which folders stay local?",
    "Does sync keep deleted files?",
    "How do I keep a folder local?",
]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llm_assets.export.gguf import write_gguf_export

    model = save_tiny_llama(tmp_path_factory.mktemp("tiny-model"), seed=TINY_SEED)
    exports = tmp_path_factory.mktemp("exports")
    write_gguf_export(
        model, exports / "gguf-f16", "gguf-f16", exports / "f16.gguf", "Be brief.", 1.1, True
    )
    return exports / "gguf-f16"


@pytest.fixture(scope="module")
def engine(export_dir: Path) -> Iterator[LlamaCppServerEngine]:
    started = LlamaCppServerEngine.start(export_dir, threads=1)
    yield started
    started.close()


@contextmanager
def _gateway(
    engine: LlamaCppServerEngine, export_dir: Path, tmp_path: Path, **config: Any
) -> Iterator[str]:
    """The app over `engine` under uvicorn in a thread; yields its base URL."""
    store = ExchangeStore(
        open_database(f"sqlite:///{tmp_path / 'feedback.db'}"), Redactor(("EMAIL",))
    )
    served: ServedModel = served_from_folder(export_dir, name="tiny")
    settings = ServingConfig(**{"max_tokens": 24, "default_max_tokens": 24, **config})
    app = create_app(engine, store, served, settings, GenerationConfig(), TOKEN)
    with serving_in_thread(app) as url:
        yield url


def _stream(base_url: str, question: str) -> tuple[int, str, list[str], dict[str, str]]:
    """(status, the streamed answer, the finish reasons and [DONE] seen, the headers)."""
    import httpx

    body = {"messages": [{"role": "user", "content": question}], "stream": True}
    pieces, ends = [], []
    with httpx.stream(
        "POST", f"{base_url}/v1/chat/completions", json=body, headers=AUTH, timeout=300
    ) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, response.text, [], dict(response.headers)
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                ends.append("[DONE]")
                continue
            choice = json.loads(line[6:])["choices"][0]
            pieces.append(choice["delta"].get("content", ""))
            if choice.get("finish_reason"):
                ends.append(choice["finish_reason"])
    return 200, "".join(pieces), ends, dict(response.headers)


def test_eight_concurrent_streams_each_finish_with_their_own_answer(
    engine: LlamaCppServerEngine, export_dir: Path, tmp_path: Path
) -> None:
    with _gateway(engine, export_dir, tmp_path) as base_url:
        alone = [_stream(base_url, question) for question in QUESTIONS]
        assert len({answer for _, answer, _, _ in alone}) > 1  # answers tell questions apart
        with ThreadPoolExecutor(max_workers=len(QUESTIONS)) as pool:
            together = list(pool.map(lambda q: _stream(base_url, q), QUESTIONS))
    for question, (status, answer, ends, _), (_, expected, _, _) in zip(
        QUESTIONS, together, alone, strict=True
    ):
        assert status == 200, question
        assert answer == expected, question  # complete, and not another request's
        assert ends[-1] == "[DONE]" and ends[0] in ("stop", "length"), question


def test_a_full_queue_is_refused_with_retry_after(
    engine: LlamaCppServerEngine, export_dir: Path, tmp_path: Path
) -> None:
    with _gateway(engine, export_dir, tmp_path, max_concurrent_requests=2) as base_url:
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda q: _stream(base_url, q), QUESTIONS[:6]))
    refused = [result for result in results if result[0] == 503]
    answered = [result for result in results if result[0] == 200]
    assert refused and answered
    for _, text, _, headers in refused:
        assert headers["retry-after"] == "5"
        assert "serving.max_concurrent_requests" in json.loads(text)["error"]["message"]
    assert all(ends[-1] == "[DONE]" for _, _, ends, _ in answered)


def test_non_streamed_answer_and_usage_come_from_the_engine(
    engine: LlamaCppServerEngine, export_dir: Path, tmp_path: Path
) -> None:
    import httpx

    with _gateway(engine, export_dir, tmp_path) as base_url:
        body = {
            "messages": [{"role": "user", "content": QUESTIONS[0]}],
            "max_tokens": 5,
        }
        response = httpx.post(f"{base_url}/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 5


def test_the_engine_wants_its_key_and_stops_with_close(export_dir: Path, tmp_path: Path) -> None:
    import httpx
    from fastapi.testclient import TestClient

    engine = LlamaCppServerEngine.start(export_dir, threads=1)
    store = ExchangeStore(open_database(f"sqlite:///{tmp_path / 'f.db'}"), Redactor(("EMAIL",)))
    served = served_from_folder(export_dir, name="tiny")
    app = create_app(engine, store, served, ServingConfig(), GenerationConfig(), TOKEN)
    try:
        assert httpx.get(f"{engine.base_url}/v1/models").status_code == 401
        assert TestClient(app).get("/healthz").status_code == 200
    finally:
        engine.close()
    assert engine.process is not None and engine.process.poll() is not None
    assert TestClient(app).get("/healthz").status_code == 503


def test_in_process_engine_decodes_context_aware_like_evaluation(export_dir: Path) -> None:
    """serving.engine llama-cpp with context_contrast: the gateway's in-process engine answers
    (whole and streamed, three streams at once) as evaluation's llama.cpp loop does."""
    from dataclasses import replace

    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.llama_cpp_engine import gguf_generate_answers, load_gguf
    from llm_assets.export.gguf import GGUF_FILE
    from llm_assets.serving.llama_cpp_local import LlamaCppLocalEngine
    from llm_assets.serving.protocol import Sampling

    engine = LlamaCppLocalEngine.start(export_dir)
    try:
        prompts, closed_texts = [], []
        for question in QUESTIONS[:3]:
            user = [{"role": "user", "content": question}]
            context = {"role": "system", "content": f"Be brief. Excerpts: {question * 2}"}
            closed = engine.prepare([{"role": "system", "content": "Be brief."}, *user])
            closed_texts.append(closed.text)
            prompts.append(
                replace(engine.prepare([context, *user]), closed_book_ids=closed.token_ids)
            )
        sampling = Sampling(16, 0.0, 1.0, 1.1, context_contrast=1.0)
        whole = [engine.complete(prompt, sampling) for prompt in prompts]

        def streamed(prompt: Any) -> tuple[str, Any]:
            stream = engine.stream(prompt, sampling)
            return "".join(stream), stream.completion

        with ThreadPoolExecutor(max_workers=3) as pool:
            streams = list(pool.map(streamed, prompts))
    finally:
        engine.close()

    tokenizer = load_chat_tokenizer(str(export_dir))
    config = GenerationConfig(max_new_tokens=16, repetition_penalty=1.1, context_contrast=1.0)
    gguf_file = export_dir / GGUF_FILE
    evaluated = gguf_generate_answers(
        load_gguf(gguf_file, 512),
        tokenizer,
        [prompt.text for prompt in prompts],
        config,
        closed_book=closed_texts,
        closed_llm=load_gguf(gguf_file, 512),
    )
    assert [completion.text for completion in whole] == evaluated.answers
    assert [completion.completion_tokens for completion in whole] == evaluated.new_tokens
    for (text, completion), expected in zip(streams, whole, strict=True):
        assert text.strip() == expected.text and completion == expected


def test_an_export_without_gguf_is_refused_and_the_context_is_capped(
    export_dir: Path, tmp_path: Path
) -> None:
    from llm_assets.serving.engine import EngineUnavailable
    from llm_assets.serving.llama_cpp_server import served_gguf

    with pytest.raises(EngineUnavailable, match=f"{tmp_path} holds no model.gguf"):
        served_gguf(tmp_path)
    gguf_file, trained = served_gguf(export_dir)
    assert gguf_file == export_dir / "model.gguf"
    assert served_gguf(export_dir, 64)[1] == 64
    assert served_gguf(export_dir, trained + 1000)[1] == trained
