"""The HTTP app: OpenAI's chat API (`/v1/chat/completions`, streamed or not, `/v1/models`), the
feedback endpoint, and the chat page at `/`.

Every `/v1` route needs `Authorization: Bearer <token>` unless the app is built with
`token=None` (`llm-assets serve --no-auth`, loopback only). The page itself holds no data and
is served without a token; it asks for one (or reads `#token=` from its URL) for its calls.
Every answer is stored, redacted, before the response ends, so feedback on it can follow at once;
with a tracer, each is an MLflow trace too (named in the `trace_id` field and the
X-MLflow-Trace-Id header), and feedback becomes assessments of it (llm_assets.serving.tracing).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from importlib import resources
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_assets.rag.context import (
    ContextFormat,
    Retrieve,
    grounded_messages,
    last_question,
    with_system_prompt,
)
from llm_assets.serving.engine import ChatEngine, Completion, Prompt, TextStream
from llm_assets.serving.guardrails import Guardrails, StreamingWithholder, read_text
from llm_assets.serving.models import ServedModel
from llm_assets.serving.protocol import (
    DONE_EVENT,
    ChatCompletionRequest,
    FeedbackRequest,
    RequestRejected,
    Sampling,
    check_limits,
    completion_body,
    completion_chunk,
    error_body,
    message_texts,
    new_response_id,
    now_seconds,
    sampling_for,
    sse_event,
    usage_chunk,
)
from llm_assets.serving.store import Exchange, ExchangeStore
from llm_assets.serving.tracing import TRACE_HEADER, ExchangeTracer, OpenTrace
from llm_assets.settings import GenerationConfig, ServingConfig

# The page may talk to this server only: no external scripts, styles or connections.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)
_ERROR_KINDS = {
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    503: "server_error",
}
# What a refused client is told to wait before retrying (Retry-After, seconds).
RETRY_AFTER_SECONDS = 5


def chat_page() -> str:
    return resources.files("llm_assets.serving").joinpath("chat_page.html").read_text("utf-8")


def create_app(
    engine: ChatEngine,
    store: ExchangeStore,
    served: ServedModel,
    config: ServingConfig,
    generation: GenerationConfig,
    token: str | None,
    retrieve: Retrieve | None = None,
    system_prompt: str | None = None,
    context: ContextFormat | None = None,
    guardrails: Guardrails | None = None,
    tracer: ExchangeTracer | None = None,
) -> FastAPI:
    """The app over a loaded `engine`; `token=None` turns authentication off; with `retrieve`
    the chunks closest to each question are given to the model as context; `system_prompt`
    (the one every training conversation began with) starts a conversation that has none;
    `context` (default: serving.rag_k and rag_max_chars) is how many chunks, how long;
    `guardrails` what is checked around every answer (llm_assets.serving.guardrails); with
    `tracer`, every exchange is an MLflow trace and feedback is attached to it."""
    app = FastAPI(
        title="llm_assets",
        summary=f"{served.name} {served.version}".strip(),
        docs_url=None,  # the docs pages load scripts from a CDN, which an air-gapped site lacks
        redoc_url=None,
    )
    _add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=config.max_request_kb * 1024)
    bearer = HTTPBearer(auto_error=False)

    def require_token(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        if token is None:
            return
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                401,
                "missing or wrong bearer token: send Authorization: Bearer <the server's "
                "LLM_ASSETS_SERVE_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    api = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])
    context = context or ContextFormat(config.rag_k, config.rag_max_chars)
    answer = _Answerer(
        engine,
        store,
        served,
        config,
        generation,
        retrieve,
        system_prompt,
        context,
        guardrails or Guardrails(),
        tracer,
    )

    @api.get("/models")
    def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": served.name,
                    "object": "model",
                    "created": answer.started,
                    "owned_by": "llm_assets",
                    "version": served.version,
                    "source": served.source,
                }
            ],
        }

    @api.post("/chat/completions", response_model=None)
    def chat_completions(
        request: ChatCompletionRequest, response: Response
    ) -> dict[str, Any] | StreamingResponse:
        body = answer(request)
        if isinstance(body, dict) and body.get("trace_id"):
            response.headers[TRACE_HEADER] = body["trace_id"]
        return body

    def attach_to_trace(feedback_id: int) -> None:
        assert tracer is not None
        row = store.traced_feedback(feedback_id)
        if row is not None and row["trace_id"]:
            tracer.attach_feedback(row["trace_id"], row)

    @api.post("/feedback", status_code=201)
    def post_feedback(request: FeedbackRequest, background: BackgroundTasks) -> dict[str, Any]:
        feedback_id = store.record_feedback(
            request.response_id,
            thumbs=request.thumbs,
            rating=request.rating,
            comment=request.comment or None,
            corrected_answer=request.corrected_answer or None,
        )
        if feedback_id is None:
            raise RequestRejected(
                404,
                f"no answer with id {request.response_id!r} was given by this server: send the "
                "`id` of a chat completion",
                "response_not_found",
            )
        if tracer is not None:
            # After the response: an MLflow slow to answer does not hold the client.
            background.add_task(attach_to_trace, feedback_id)
        return {"object": "feedback", "id": feedback_id, "response_id": request.response_id}

    app.include_router(api)

    page_html = chat_page()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(page_html, headers={"Content-Security-Policy": _PAGE_POLICY})

    @app.get("/healthz", include_in_schema=False, response_model=None)
    def health() -> dict[str, str] | JSONResponse:
        # An engine in a process of its own (llama-cpp) can die under the gateway.
        healthy = getattr(engine, "healthy", None)
        if healthy is not None and not healthy():
            return JSONResponse({"status": "engine process stopped"}, status_code=503)
        return {"status": "ok"}

    return app


def request_prompt(
    messages: list[dict[str, str]],
    system_prompt: str | None,
    retrieve: Retrieve | None,
    context: ContextFormat,
) -> tuple[list[dict[str, str]], list[str], float | None]:
    """A request's messages as the model reads them: the system prompt when the request has
    none and, with `retrieve`, the closest chunks as context; the ids of the chunks used; and
    the closest chunk's score (None without retrieval), which the scope guard reads."""
    if retrieve is None:
        return with_system_prompt(messages, system_prompt), [], None
    chunks = retrieve(last_question(messages), context.k)
    prompt, used = grounded_messages(messages, chunks, system_prompt, context.max_chars)
    return prompt, used, chunks[0].score if chunks else None


def guarded_stream(inner: TextStream, withholder: StreamingWithholder) -> TextStream:
    """`inner`'s pieces with unseen PII withheld; its completion holds the text as sent."""
    outer = TextStream(iter(()))

    def pieces() -> Iterator[str]:
        try:
            for piece in inner:
                if sent := withholder.feed(piece):
                    yield sent
            if rest := withholder.finish():
                yield rest
            done = inner.completion
            assert done is not None  # set once the stream is read to the end
            outer.completion = Completion(
                withholder.emitted, done.prompt_tokens, done.completion_tokens, done.finish_reason
            )
        finally:
            inner.close()

    outer.pieces = pieces()
    return outer


def declined_stream(reply: str, prompt_tokens: int) -> TextStream:
    """The out-of-scope reply as a stream of one piece: the model is not asked."""
    return TextStream(iter([reply]), Completion(reply, prompt_tokens, 0, "stop"))


class _Answerer:
    """One chat completion: checked, with context when RAG is on, generated, stored."""

    def __init__(
        self,
        engine: ChatEngine,
        store: ExchangeStore,
        served: ServedModel,
        config: ServingConfig,
        generation: GenerationConfig,
        retrieve: Retrieve | None,
        system_prompt: str | None,
        context: ContextFormat,
        guardrails: Guardrails,
        tracer: ExchangeTracer | None = None,
    ) -> None:
        self.engine = engine
        self.tracer = tracer
        self.guardrails = guardrails
        self.context = context
        self.system_prompt = system_prompt
        self.store = store
        self.served = served
        self.config = config
        self.generation = generation
        self.retrieve = retrieve
        self.started = now_seconds()
        self.slots = threading.BoundedSemaphore(config.max_concurrent_requests)

    def __call__(self, request: ChatCompletionRequest) -> dict[str, Any] | StreamingResponse:
        """Answers while fewer than serving.max_concurrent_requests are being answered or
        wait for the engine; refuses with 503 and Retry-After beyond that."""
        if not self.slots.acquire(blocking=False):
            raise RequestRejected(
                503,
                f"{self.config.max_concurrent_requests} requests are being answered or queued "
                "(serving.max_concurrent_requests): retry after the Retry-After seconds",
                "server_busy",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        slot = _Slot(self.slots)
        try:
            answer = self._answer(request, slot)
        except BaseException:
            slot.release()
            raise
        if not isinstance(answer, StreamingResponse):
            slot.release()
        return answer

    def _answer(
        self, request: ChatCompletionRequest, slot: _Slot
    ) -> dict[str, Any] | StreamingResponse:
        started = time.perf_counter()
        started_ns = time.time_ns()
        if request.model and request.model != self.served.name:
            raise RequestRejected(
                404,
                f"model {request.model!r} is not served here; this server serves "
                f"{self.served.name!r} (GET /v1/models)",
                "model_not_found",
            )
        check_limits(request, self.config)
        messages = message_texts(request)
        prompt_messages, chunk_ids, relevance = request_prompt(
            messages, self.system_prompt, self.retrieve, self.context
        )
        declined = self.guardrails.declines(relevance)
        read = read_text(prompt_messages)
        prompt = self.engine.prepare(prompt_messages)
        if chunk_ids and self.generation.context_contrast > 0:
            # Context-aware decoding contrasts the answer with the same conversation unread.
            closed_book = self.engine.prepare(with_system_prompt(messages, self.system_prompt))
            prompt = replace(prompt, closed_book_ids=closed_book.token_ids)
        sampling = self._fitted(sampling_for(request, self.config, self.generation), prompt)
        exchange = Exchange(
            response_id=new_response_id(),
            model=self.served.name,
            model_version=self.served.version,
            messages=messages,
            answer="",
            prompt_tokens=len(prompt.token_ids),
            completion_tokens=0,
            latency_ms=0.0,
            finish_reason="",
            stream=request.stream,
            rag_chunk_ids=chunk_ids,
        )
        trace = self.tracer.open(exchange, request.user, started_ns) if self.tracer else None
        exchange.trace_id = trace.trace_id if trace else None
        extra: dict[str, Any] = {"model_version": self.served.version}
        if self.retrieve is not None:
            extra["rag_chunk_ids"] = chunk_ids
        if self.tracer is not None:
            extra["trace_id"] = exchange.trace_id
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            if exchange.trace_id:
                headers[TRACE_HEADER] = exchange.trace_id
            return StreamingResponse(
                self._events(
                    # Opened when the response starts, not before: a client gone by then
                    # starts no generation.
                    lambda: self._stream(prompt, sampling, declined, read),
                    exchange,
                    started,
                    include_usage,
                    slot,
                    trace,
                ),
                media_type="text/event-stream",
                headers=headers,
                # Also frees the slot (and ends the trace) when the client left before the
                # stream began.
                background=BackgroundTask(self._stream_ended, slot, trace),
            )
        try:
            completion = self._complete(prompt, sampling, declined, read)
            stored = self._record(exchange, completion, started)
        except BaseException as error:
            self._abandon(trace, f"no answer: {error!r}")
            raise
        if self.tracer is not None:
            self.tracer.close(trace, stored)
        return completion_body(
            exchange.response_id,
            now_seconds(),
            self.served.name,
            completion.text,
            completion.finish_reason,
            completion.prompt_tokens,
            completion.completion_tokens,
            extra,
        )

    def _complete(
        self, prompt: Prompt, sampling: Sampling, declined: bool, read: str
    ) -> Completion:
        """The engine's answer after the guardrails (`read`: what the model read)."""
        if declined:
            return Completion(self.guardrails.out_of_scope_reply, len(prompt.token_ids), 0, "stop")
        completion = self.engine.complete(prompt, sampling)
        if not self.guardrails.withhold_unseen_pii:
            return completion
        guarded = self.guardrails.guarded(completion.text, None, read)
        completion.text = guarded.text
        return completion

    def _stream(self, prompt: Prompt, sampling: Sampling, declined: bool, read: str) -> TextStream:
        if declined:
            return declined_stream(self.guardrails.out_of_scope_reply, len(prompt.token_ids))
        stream = self.engine.stream(prompt, sampling)
        if not self.guardrails.withhold_unseen_pii:
            return stream
        return guarded_stream(stream, StreamingWithholder(read, self.guardrails.pii_allow_list))

    def _record(self, exchange: Exchange, completion: Completion, started: float) -> Exchange:
        """Stores the answered `exchange`; returns it as stored (redacted)."""
        exchange.answer = completion.text
        exchange.completion_tokens = completion.completion_tokens
        exchange.finish_reason = completion.finish_reason
        exchange.latency_ms = 1000 * (time.perf_counter() - started)
        return self.store.record_exchange(exchange)

    def _abandon(self, trace: OpenTrace | None, reason: str) -> None:
        if self.tracer is not None:
            self.tracer.abandon(trace, reason)

    def _stream_ended(self, slot: _Slot, trace: OpenTrace | None) -> None:
        slot.release()
        self._abandon(trace, "the client left before the answer began")

    def _fitted(self, sampling: Sampling, prompt: Prompt) -> Sampling:
        """`sampling` with max_tokens lowered to what the model's context has room for."""
        room = self.engine.context_length - len(prompt.token_ids)
        if room < 1:
            raise RequestRejected(
                400,
                f"the conversation is {len(prompt.token_ids)} tokens; the model reads at most "
                f"{self.engine.context_length}: send fewer or shorter messages",
                "context_length_exceeded",
            )
        if sampling.max_tokens <= room:
            return sampling
        return replace(sampling, max_tokens=room)

    def _events(
        self,
        open_stream: Callable[[], TextStream],
        exchange: Exchange,
        started: float,
        include_usage: bool,
        slot: _Slot,
        trace: OpenTrace | None = None,
    ) -> Iterator[str]:
        """The answer as OpenAI's chunks: the role, the text piece by piece, the finish reason,
        the usage when asked for, then [DONE]; stored (and its trace ended) before the finish
        chunk goes out."""
        try:
            created = now_seconds()
            name = self.served.name
            yield sse_event(
                completion_chunk(exchange.response_id, created, name, {"role": "assistant"})
            )
            text_stream = open_stream()
            try:
                for piece in text_stream:
                    if exchange.first_token_ms is None:
                        exchange.first_token_ms = 1000 * (time.perf_counter() - started)
                    yield sse_event(
                        completion_chunk(exchange.response_id, created, name, {"content": piece})
                    )
            finally:
                text_stream.close()
            completion = text_stream.completion
            assert completion is not None  # set once the stream is read to the end
            stored = self._record(exchange, completion, started)
            if self.tracer is not None:
                self.tracer.close(trace, stored)
            yield sse_event(
                completion_chunk(exchange.response_id, created, name, {}, completion.finish_reason)
            )
            if include_usage:
                yield sse_event(
                    usage_chunk(
                        exchange.response_id,
                        created,
                        name,
                        completion.prompt_tokens,
                        completion.completion_tokens,
                    )
                )
            yield DONE_EVENT
        finally:
            slot.release()
            # A no-op once closed above; else the client left or generation failed.
            self._abandon(trace, "the stream ended before the answer was stored")


class _Slot:
    """One request's place among serving.max_concurrent_requests, given back once."""

    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self._slots = slots
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            if self._held:
                self._held = False
                self._slots.release()


class BodyLimit:
    """Refuses request bodies over `max_bytes` with 413: at once when Content-Length says so,
    else as soon as the bytes read pass the limit (a chunked upload)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            too_large = JSONResponse(
                error_body(_too_large_message(self.max_bytes), "invalid_request_error"), 413
            )
            await too_large(scope, receive, send)
            return
        read = 0

        async def counted() -> Message:
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            if read > self.max_bytes:
                # Re-raised by FastAPI's body reading, answered by the HTTPException handler.
                raise HTTPException(413, _too_large_message(self.max_bytes))
            return message

        await self.app(scope, counted, send)


def _too_large_message(max_bytes: int) -> str:
    return (
        f"request body over {max_bytes // 1024} KB (serving.max_request_kb): send fewer or "
        "shorter messages"
    )


def _add_error_handlers(app: FastAPI) -> None:
    """Errors in OpenAI's shape (`{"error": {"message", "type", "code"}}`), which its clients
    raise with the message; validation errors keep FastAPI's `detail` list too."""

    @app.exception_handler(RequestRejected)
    def rejected(_: Request, error: RequestRejected) -> JSONResponse:
        kind = _ERROR_KINDS.get(error.status, "invalid_request_error")
        return JSONResponse(
            error_body(error.message, kind, error.code),
            status_code=error.status,
            headers=error.headers,
        )

    @app.exception_handler(HTTPException)
    def http_error(_: Request, error: HTTPException) -> JSONResponse:
        message = str(error.detail)
        kind = _ERROR_KINDS.get(error.status_code, "invalid_request_error")
        return JSONResponse(
            error_body(message, kind, None),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        from fastapi.encoders import jsonable_encoder

        problems = [
            f"{'.'.join(str(part) for part in item['loc'] if part != 'body')}: {item['msg']}"
            for item in error.errors()
        ]
        body = error_body("; ".join(problems), "invalid_request_error", "invalid_value")
        body["detail"] = jsonable_encoder(error.errors())
        return JSONResponse(body, status_code=422)
