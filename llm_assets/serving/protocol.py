"""The bodies of the OpenAI chat API as served here, the limits a request must keep, and the
server-sent event chunks of a streamed answer.

The request model accepts what OpenAI clients send and ignores parameters it does not act on
(`seed`, `presence_penalty`, tool definitions …); what it acts on is validated: roles, at most
one answer (`n`), temperature in [0, 2], top_p in (0, 1]. Limits that come from the profile
(messages per request, the longest answer) are applied by `check_limits` and `sampling_for`.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_assets.settings import GenerationConfig, ServingConfig

DONE_EVENT = "data: [DONE]\n\n"


class RequestRejected(Exception):
    """A request the server will not answer; `status` is the HTTP status to reply with."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str = "invalid_request",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers


class ContentPart(BaseModel):
    """One part of a message's content, as OpenAI's newer clients send it
    (`[{"type": "text", "text": "..."}]`). Any type is accepted here so that `message_texts`
    can refuse the ones the server cannot read with a 400 that names them, not a 422."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(description="'text' is read; other kinds (image_url, file …) are refused")
    text: str | None = Field(None, description="the text of a part of type 'text'")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart] = Field(
        description="a string, or a list of text parts joined in order with newlines"
    )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, description="the served model's id; omitted: that one")
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="newer name of max_tokens")
    temperature: float | None = Field(None, ge=0, le=2, description="0: greedy")
    top_p: float | None = Field(None, gt=0, le=1)
    n: Literal[1] = Field(1, description="one answer per request")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None


class FeedbackRequest(BaseModel):
    """A user's judgement of one answer: any of thumbs, a 1-5 rating, a comment and the answer
    they expected, linked to the `id` of the chat completion."""

    model_config = ConfigDict(extra="forbid")

    response_id: str = Field(min_length=1, max_length=64)
    thumbs: Literal["up", "down"] | None = None
    rating: int | None = Field(None, ge=1, le=5)
    comment: str | None = Field(None, max_length=4000)
    corrected_answer: str | None = Field(None, max_length=16000)

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackRequest:
        given = (self.thumbs, self.rating, self.comment, self.corrected_answer)
        if all(value is None or value == "" for value in given):
            raise ValueError("give at least one of thumbs, rating, comment, corrected_answer")
        return self


@dataclass(frozen=True)
class Sampling:
    """How one answer is decoded."""

    max_tokens: int
    temperature: float
    top_p: float
    repetition_penalty: float
    # Context-aware decoding of a prompt with retrieved context (evaluation.generation's).
    context_contrast: float = 0.0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def check_limits(request: ChatCompletionRequest, config: ServingConfig) -> None:
    """Raise `RequestRejected` for a conversation the server will not answer."""
    if len(request.messages) > config.max_messages:
        raise RequestRejected(
            400,
            f"{len(request.messages)} messages; this server takes at most {config.max_messages} "
            "(serving.max_messages): send the latest turns only",
            "too_many_messages",
        )
    if request.messages[-1].role != "user":
        raise RequestRejected(
            400, "the last message must be the user's (role 'user'): it is what gets answered"
        )


def message_texts(request: ChatCompletionRequest) -> list[dict[str, str]]:
    """The request's messages as `{"role", "content"}` with text content: a list of parts
    becomes its text parts joined in order by newlines (as vLLM reads them). A part of another
    type, or a text part without text, raises `RequestRejected` (400) naming it."""
    messages = []
    for number, message in enumerate(request.messages):
        if isinstance(message.content, str):
            messages.append({"role": message.role, "content": message.content})
            continue
        texts = []
        for index, part in enumerate(message.content):
            if part.type != "text" or part.text is None:
                what = f"of type {part.type!r}" if part.type != "text" else "without 'text'"
                raise RequestRejected(
                    400,
                    f"messages[{number}].content[{index}] is a part {what}; this server reads "
                    'text only: send parts {"type": "text", "text": "..."} or a string',
                    "unsupported_content",
                )
            texts.append(part.text)
        messages.append({"role": message.role, "content": "\n".join(texts)})
    return messages


def sampling_for(
    request: ChatCompletionRequest, config: ServingConfig, generation: GenerationConfig
) -> Sampling:
    """The request's decoding, capped by the profile: max_tokens at most `serving.max_tokens`;
    unset values follow `evaluation.generation` (greedy unless it samples), so what is served
    by default is what was evaluated."""
    asked = request.max_completion_tokens or request.max_tokens or config.default_max_tokens
    if request.temperature is not None:
        temperature = request.temperature
    else:
        temperature = generation.temperature if generation.do_sample else 0.0
    return Sampling(
        max_tokens=min(asked, config.max_tokens),
        temperature=temperature,
        top_p=request.top_p if request.top_p is not None else generation.top_p,
        repetition_penalty=generation.repetition_penalty,
        context_contrast=generation.context_contrast,
    )


def new_response_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_body(
    response_id: str,
    created: int,
    model: str,
    answer: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `chat.completion` object, with `extra` fields (model version, RAG chunk ids) beside
    OpenAI's, which clients ignore."""
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage(prompt_tokens, completion_tokens),
        **(extra or {}),
    }


def completion_chunk(
    response_id: str,
    created: int,
    model: str,
    delta: dict[str, str],
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """One `chat.completion.chunk`: the first carries the role, the next ones text, the last an
    empty delta and the finish reason."""
    return {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def usage_chunk(
    response_id: str, created: int, model: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """The chunk sent before [DONE] with `stream_options.include_usage`: no choices, the usage."""
    return {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def sse_event(payload: dict[str, Any]) -> str:
    """One server-sent event: a `data:` line of compact JSON and the blank line ending it."""
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


def error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object, which its clients turn into exceptions with this message."""
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}


def now_seconds() -> int:
    return int(time.time())
