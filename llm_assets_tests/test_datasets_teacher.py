"""The teacher client against a real HTTP server on localhost, speaking the OpenAI chat API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llm_assets.datasets.sft import build_sft_pairs
from llm_assets.datasets.teacher import (
    TeacherClient,
    TeacherError,
    chat_completions_url,
    parse_qa_pairs,
)
from llm_assets.settings import DatasetConfig, TeacherConfig
from llm_assets_tests.conftest import ChatEndpoint, chat_endpoint


@dataclass
class FakeOpenAI:
    """What the server received, and how it answers: `replies` in order (a status code or the
    assistant text), then the last one again."""

    endpoint: ChatEndpoint
    replies: list[int | str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.endpoint.requests

    @property
    def headers(self) -> list[dict[str, str]]:
        return self.endpoint.headers


@pytest.fixture
def teacher_server() -> Iterator[FakeOpenAI]:
    def reply(_: dict[str, Any]) -> int | str:
        return state.replies[min(len(state.requests), len(state.replies)) - 1]

    with chat_endpoint(reply) as endpoint:
        state = FakeOpenAI(endpoint)
        yield state


QA = json.dumps(
    [
        {"question": "Which port does LAN sync use?", "answer": "UDP 47123 to find peers."},
        {"question": "Is LAN sync on Free?", "answer": "No, Pro and Team only."},
    ]
)
DOC = (
    "# LAN sync\n\nLAN sync copies blocks between computers on the same network before it "
    "asks the cloud. Peers find each other on UDP port 47123.\n\n## Plans\n\nLAN sync is "
    "available on the Pro and Team plans and is on by default in the desktop apps.\n"
)


def test_teacher_pairs_come_from_the_endpoint_and_are_cached(
    teacher_server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    teacher_server.replies = [f"Here you go:\n```json\n{QA}\n```"]
    monkeypatch.setenv("TEACHER_KEY", "sk-local")
    config = DatasetConfig(
        teacher=TeacherConfig(
            enabled=True,
            url=teacher_server.url,
            model="teacher-7b",
            api_key_env="TEACHER_KEY",
            pairs_per_section=2,
        )
    )
    corpus = pd.DataFrame(
        [
            {
                "record_id": "lan.md",
                "source": "docs",
                "text": DOC,
                "response": None,
                "fields": '{"title": "LAN sync"}',
            }
        ]
    )
    client = TeacherClient.from_config(config.teacher, cache_dir=tmp_path / "cache")
    built = build_sft_pairs(corpus, config, client)
    teacher_rows = built.pairs[built.pairs["task"] == "teacher_qa"]
    assert len(teacher_rows) == 4  # two sections, two pairs each
    assert list(teacher_rows["section"].unique()) == ["LAN sync", "Plans"]
    assert teacher_rows.iloc[0]["instruction"] == "Which port does LAN sync use?"
    assert teacher_rows.iloc[0]["messages"][-1]["content"] == "UDP 47123 to find peers."
    assert built.pairs["pair_id"].is_unique
    request = teacher_server.requests[0]
    assert request["model"] == "teacher-7b" and request["temperature"] == 0.0
    assert "UDP port 47123" in request["messages"][0]["content"]
    assert teacher_server.headers[0]["Authorization"] == "Bearer sk-local"
    assert built.teacher is not None and built.teacher.pairs == 4

    # The same requests again are answered from the cache: the server hears nothing new.
    again = TeacherClient.from_config(config.teacher, cache_dir=tmp_path / "cache")
    rebuilt = build_sft_pairs(corpus, config, again)
    assert len(teacher_server.requests) == 2
    assert again.cache_hits == 2
    assert rebuilt.pairs.equals(built.pairs)


def test_teacher_retries_overload_and_stops_on_refusal(teacher_server: FakeOpenAI) -> None:
    teacher_server.replies = [503, "[]"]
    client = TeacherClient(teacher_server.url + "/chat/completions", "m", _backoff_s=0.01)
    assert client.complete([{"role": "user", "content": "hi"}]) == "[]"
    assert client.requests_sent == 2

    teacher_server.replies = [401]
    teacher_server.requests.clear()
    with pytest.raises(TeacherError, match="HTTP 401"):
        TeacherClient(teacher_server.url + "/chat/completions", "m").complete(
            [{"role": "user", "content": "hi"}]
        )


def test_unreachable_teacher_says_how_to_fix_it() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = TeacherClient(f"http://127.0.0.1:{port}/v1/chat/completions", "m", retries=0)
    with pytest.raises(TeacherError, match="datasets.teacher.enabled: false"):
        client.complete([{"role": "user", "content": "hi"}])


def test_unset_api_key_variable_is_named() -> None:
    config = TeacherConfig(enabled=True, url="http://127.0.0.1:1/v1", model="m", api_key_env="NOPE")
    with pytest.raises(TeacherError, match=r"\$NOPE"):
        TeacherClient.from_config(config)


def test_replies_are_parsed_leniently_and_capped() -> None:
    assert parse_qa_pairs(f"Sure! {QA} Hope that helps.", limit=1) == [
        ("Which port does LAN sync use?", "UDP 47123 to find peers.")
    ]
    assert parse_qa_pairs("I cannot help with that.", limit=3) == []
    assert parse_qa_pairs('[{"question": "", "answer": "x"}, {"q": 1}]', limit=3) == []
    assert chat_completions_url("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
