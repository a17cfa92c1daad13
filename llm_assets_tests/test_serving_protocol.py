import json

import pytest
from pydantic import ValidationError

from llm_assets.rag.context import ContextFormat
from llm_assets.rag.index import RetrievedChunk
from llm_assets.serving.app import request_prompt
from llm_assets.serving.protocol import (
    DONE_EVENT,
    ChatCompletionRequest,
    FeedbackRequest,
    RequestRejected,
    check_limits,
    completion_chunk,
    message_texts,
    sampling_for,
    sse_event,
    usage_chunk,
)
from llm_assets.settings import GenerationConfig, ServingConfig

USER = {"role": "user", "content": "How do I restore a deleted file?"}


def _request(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"messages": [USER], **fields})


def test_request_accepts_what_openai_clients_send_and_ignores_unused_parameters() -> None:
    request = _request(model="m", seed=3, presence_penalty=0.5, stream=True)

    assert request.stream and request.model == "m"
    assert request.messages[0].content == USER["content"]


@pytest.mark.parametrize(
    "fields",
    [
        {"messages": []},
        {"messages": [{"role": "tool", "content": "x"}]},
        {"messages": [{"role": "user"}]},
        {"n": 2},
        {"temperature": 2.5},
        {"top_p": 0},
        {"max_tokens": 0},
    ],
)
def test_request_rejects_values_it_cannot_honour(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _request(**fields)


def test_limits_bound_the_conversation_and_want_a_user_question_last() -> None:
    config = ServingConfig(max_messages=2)
    three = [USER, {"role": "assistant", "content": "Open the trash."}, USER]

    with pytest.raises(RequestRejected, match="at most 2") as too_many:
        check_limits(_request(messages=three), config)
    with pytest.raises(RequestRejected, match="last message must be the user's"):
        check_limits(_request(messages=[USER, {"role": "assistant", "content": "x"}]), config)

    assert too_many.value.status == 400
    check_limits(_request(), config)


def test_text_parts_are_joined_in_order_and_other_parts_refused_with_400() -> None:
    parts = [{"type": "text", "text": "How do I restore"}, {"type": "text", "text": "a file?"}]
    request = _request(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": parts}]
    )
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}

    assert message_texts(request) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "How do I restore\na file?"},
    ]
    with pytest.raises(
        RequestRejected, match=r"content\[1\] is a part of type 'input_audio'"
    ) as raised:
        message_texts(_request(messages=[{"role": "user", "content": [parts[0], audio]}]))
    assert raised.value.status == 400
    with pytest.raises(RequestRejected, match="without 'text'"):
        message_texts(_request(messages=[{"role": "user", "content": [{"type": "text"}]}]))


def test_sampling_caps_max_tokens_and_follows_evaluation_when_unset() -> None:
    config = ServingConfig(max_tokens=64, default_max_tokens=32)
    greedy = GenerationConfig(repetition_penalty=1.2)

    unset = sampling_for(_request(), config, greedy)
    asked_too_much = sampling_for(_request(max_tokens=10_000, temperature=0.7), config, greedy)
    newer_name_wins = sampling_for(_request(max_tokens=5, max_completion_tokens=9), config, greedy)
    sampled = sampling_for(_request(), config, GenerationConfig(do_sample=True, temperature=0.6))

    assert (unset.max_tokens, unset.greedy, unset.repetition_penalty) == (32, True, 1.2)
    assert (asked_too_much.max_tokens, asked_too_much.temperature) == (64, 0.7)
    assert newer_name_wins.max_tokens == 9
    assert (sampled.greedy, sampled.temperature) == (False, 0.6)


def test_profile_refuses_a_default_answer_longer_than_the_cap() -> None:
    with pytest.raises(ValidationError, match="default_max_tokens"):
        ServingConfig(max_tokens=16, default_max_tokens=32)


def test_feedback_needs_something_said_and_values_in_range() -> None:
    ok = FeedbackRequest(response_id="chatcmpl-1", thumbs="up", rating=5, comment="clear")

    assert ok.rating == 5
    for bad in (
        {},
        {"comment": ""},
        {"rating": 0},
        {"rating": 6},
        {"thumbs": "sideways"},
        {"thumbs": "up", "stars": 3},
    ):
        with pytest.raises(ValidationError):
            FeedbackRequest.model_validate({"response_id": "chatcmpl-1", **bad})


def test_stream_chunks_are_openai_server_sent_events() -> None:
    first = completion_chunk("chatcmpl-1", 1700000000, "m", {"role": "assistant"})
    last = completion_chunk("chatcmpl-1", 1700000000, "m", {}, "stop")

    event = sse_event(first)

    assert event.startswith("data: {") and event.endswith("}\n\n") and "\n" not in event[:-2]
    assert json.loads(event.removeprefix("data: ")) == {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}],
    }
    assert last["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert usage_chunk("chatcmpl-1", 1, "m", 7, 3)["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
    }
    assert sse_event({"text": "é\nx"}) == 'data: {"text":"é\\nx"}\n\n'
    assert DONE_EVENT == "data: [DONE]\n\n"


def _chunk(number: int, text: str) -> RetrievedChunk:
    return RetrievedChunk(
        f"docs/guide#{number}", "guide", "docs", "guide.md", f"Part {number}", text, 0.9
    )


def test_retrieved_chunks_join_the_system_message_within_the_budget() -> None:
    chunks = [_chunk(1, "Deleted files stay in the trash for 30 days."), _chunk(2, "x " * 2000)]
    system = {"role": "system", "content": "Be brief."}

    def retrieve(question: str, k: int) -> list[RetrievedChunk]:
        assert (question, k) == (USER["content"], 2)
        return chunks

    plain, used, relevance = request_prompt([USER], None, retrieve, ContextFormat(2, 400))
    merged, _, _ = request_prompt([system, USER], None, retrieve, ContextFormat(2, 400))

    assert used == ["docs/guide#1", "docs/guide#2"]
    assert relevance == 0.9
    assert [m["role"] for m in plain] == ["system", "user"]
    assert "[1] (guide.md > Part 1)\nDeleted files stay in the trash" in plain[0]["content"]
    assert len(plain[0]["content"]) <= 400
    assert [m["role"] for m in merged] == ["system", "user"]
    assert merged[0]["content"].startswith("Be brief.\n\n")
    nothing = request_prompt([USER], None, lambda q, k: [], ContextFormat(2, 400))
    assert nothing == ([USER], [], None)
