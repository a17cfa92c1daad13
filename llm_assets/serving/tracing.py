"""Every served exchange as an MLflow trace, and the feedback on it as assessments of that trace.

One trace per chat completion, streamed or not, in the serving experiment (serving.trace_experiment,
default `<registered model name>-serving`): its root span opens when the request is accepted and
ends once the answer is stored. Inputs are the conversation and outputs the answer, as the
feedback store keeps them (PII-redacted); tags name the model, the registry version served and
how it was chosen (champion, alias, number) and the exchange's response id; attributes hold the
RAG chunk ids, latency, tokens and finish reason. A registry version registered from a logged
model links its traces to that model's page (trace metadata `mlflow.modelId`).

Feedback becomes assessments of the exchange's trace, from a HUMAN source (the `user` the chat
request named, when it named one): thumbs → feedback `thumbs` (bool), rating → feedback `rating`
(int), corrected answer → expectation `correction` (the text), comment → the rationale of those
(a feedback `comment` when it comes alone).

Tracing never fails a request: when MLflow cannot be reached the answer and the feedback are
still served and stored, a warning is logged once, and `ExchangeTracer.failures` counts each
failure (MLflow logs its own warning for a trace it could not write in the background).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_assets.evaluation.mlflow_evaluation import logged_model_id
from llm_assets.serving.models import ServedModel
from llm_assets.serving.store import Exchange

logger = logging.getLogger(__name__)

# The response header that names an answer's trace (the body has it as `trace_id` too).
TRACE_HEADER = "X-MLflow-Trace-Id"
SPAN_NAME = "chat_completion"
ANONYMOUS = "anonymous"  # the source id of feedback from a user the chat request did not name


def serving_experiment_name(served: ServedModel, configured: str | None) -> str:
    """serving.trace_experiment, else `<served model name>-serving`."""
    return configured or f"{served.name}-serving"


@dataclass
class OpenTrace:
    """The root span of one exchange being answered; ended once."""

    span: Any  # mlflow.entities.LiveSpan
    ended: bool = False

    @property
    def trace_id(self) -> str:
        return str(self.span.trace_id)


class ExchangeTracer:
    """Traces the exchanges of one served model into one experiment; `experiment_id=None`
    traces nothing (MLflow was not reachable when serving started)."""

    def __init__(
        self,
        experiment_id: str | None,
        served: ServedModel,
        model_id: str | None = None,
        experiment_name: str = "",
    ) -> None:
        self.experiment_id = experiment_id
        self.experiment_name = experiment_name
        self.served = served
        self.model_id = model_id
        self.failures = 0
        self._warned = False
        self._lock = threading.Lock()

    def open(self, exchange: Exchange, user: str | None, started_ns: int) -> OpenTrace | None:
        """The exchange's root span, started at `started_ns` (time.time_ns() when the request
        came); None when tracing is off or failed."""
        if self.experiment_id is None:
            return None
        try:
            import mlflow
            from mlflow.entities import NoOpSpan, SpanType
            from mlflow.tracing.constant import TraceMetadataKey

            metadata = {}
            if self.model_id:
                metadata[TraceMetadataKey.MODEL_ID] = self.model_id
            if user:
                metadata[TraceMetadataKey.TRACE_USER] = user
            span = mlflow.start_span_no_context(
                SPAN_NAME,
                span_type=SpanType.CHAT_MODEL,
                attributes={"response_id": exchange.response_id, "stream": exchange.stream},
                tags={
                    "response_id": exchange.response_id,
                    "model_name": self.served.name,
                    "model_version": self.served.version,
                    "model_source": self.served.source,
                },
                metadata=metadata,
                experiment_id=self.experiment_id,
                start_time_ns=started_ns,
            )
        except Exception as error:  # tracing must not fail the answer
            self._failed("start the trace of", exchange.response_id, error)
            return None
        if isinstance(span, NoOpSpan):
            # MLflow returns a no-op span when it could not start one (it logs why).
            self._failed("start the trace of", exchange.response_id, "no trace was started")
            return None
        return OpenTrace(span)

    def close(self, trace: OpenTrace | None, stored: Exchange) -> None:
        """Ends `trace` with the exchange as stored (redacted) and its measures."""
        if trace is None or trace.ended:
            return
        trace.ended = True
        try:
            trace.span.set_inputs({"messages": stored.messages})
            trace.span.set_attributes(
                {
                    "rag_chunk_ids": list(stored.rag_chunk_ids),
                    "latency_ms": round(stored.latency_ms, 2),
                    "prompt_tokens": stored.prompt_tokens,
                    "completion_tokens": stored.completion_tokens,
                    "finish_reason": stored.finish_reason,
                    **(
                        {"first_token_ms": round(stored.first_token_ms, 2)}
                        if stored.first_token_ms is not None
                        else {}
                    ),
                }
            )
            trace.span.end(outputs=_chat_output(stored))
        except Exception as error:
            self._failed("end the trace of", stored.response_id, error)

    def abandon(self, trace: OpenTrace | None, reason: str) -> None:
        """Ends `trace` as an error: the answer was not finished nor stored (`reason`)."""
        if trace is None or trace.ended:
            return
        trace.ended = True
        try:
            from mlflow.entities import SpanStatus, SpanStatusCode

            trace.span.set_attribute("abandoned", reason)
            trace.span.end(status=SpanStatus(SpanStatusCode.ERROR, reason))
        except Exception as error:
            self._failed("end the trace", trace.trace_id, error)

    def attach_feedback(self, trace_id: str, row: dict[str, Any]) -> int:
        """Logs feedback `row` (as ExchangeStore.traced_feedback returns it: thumbs, rating,
        comment, corrected_answer) as assessments of trace `trace_id`; how many were logged."""
        try:
            return self._log_assessments(trace_id, row)
        except Exception as error:  # tracing must not fail the feedback
            self._failed("attach feedback to trace", trace_id, error)
            return 0

    def _log_assessments(self, trace_id: str, row: dict[str, Any]) -> int:
        import mlflow
        from mlflow.entities import AssessmentSource, AssessmentSourceType

        source = AssessmentSource(
            source_type=AssessmentSourceType.HUMAN, source_id=self._user_of(trace_id)
        )
        metadata = {"feedback_id": str(row["feedback_id"]), "response_id": row["response_id"]}
        comment = row.get("comment") or None
        logged = 0
        if row.get("thumbs"):
            mlflow.log_feedback(
                trace_id=trace_id,
                name="thumbs",
                value=row["thumbs"] == "up",
                source=source,
                rationale=comment,
                metadata=metadata,
            )
            logged += 1
        if row.get("rating") is not None:
            mlflow.log_feedback(
                trace_id=trace_id,
                name="rating",
                value=int(row["rating"]),
                source=source,
                rationale=comment,
                metadata=metadata,
            )
            logged += 1
        if row.get("corrected_answer"):
            mlflow.log_expectation(
                trace_id=trace_id,
                name="correction",
                value=row["corrected_answer"],
                source=source,
                metadata=metadata,
            )
            logged += 1
        if comment and not logged:
            mlflow.log_feedback(
                trace_id=trace_id, name="comment", value=comment, source=source, metadata=metadata
            )
            logged += 1
        return logged

    def _user_of(self, trace_id: str) -> str:
        """The `user` the chat request of `trace_id` named, else ANONYMOUS."""
        import mlflow
        from mlflow.tracing.constant import TraceMetadataKey

        # flush: MLflow writes traces in the background; one just answered may be queued.
        trace = mlflow.get_trace(trace_id, silent=True, flush=True)
        if trace is None:
            raise LookupError(f"trace {trace_id} is not in {mlflow.get_tracking_uri()}")
        return str(trace.info.trace_metadata.get(TraceMetadataKey.TRACE_USER) or ANONYMOUS)

    def _failed(self, action: str, what: str, error: object) -> None:
        with self._lock:
            self.failures += 1
            first = not self._warned
            self._warned = True
        if first:
            logger.warning(
                "could not %s %s in MLflow (%s); serving goes on without it. Later tracing "
                "failures are logged at debug level and counted in the tracer's `failures`; "
                "check that the tracking store (MLFLOW_TRACKING_URI) is reachable",
                action,
                what,
                error,
            )
        else:
            logger.debug("could not %s %s in MLflow: %s", action, what, error)


def exchange_tracer(served: ServedModel, experiment_name: str) -> ExchangeTracer:
    """A tracer into experiment `experiment_name` of the current tracking store (created when
    missing; a local SQLite store keeps its artifacts beside its database), linked to the
    logged model of `served`'s registry version when it has one. When MLflow cannot be
    reached, a tracer that traces nothing, with the failure warned about and counted."""
    import mlflow

    try:
        experiment_id = _experiment_id(mlflow, experiment_name)
    except Exception as error:
        tracer = ExchangeTracer(None, served, experiment_name=experiment_name)
        tracer._failed("open the serving experiment", repr(experiment_name), error)
        return tracer
    return ExchangeTracer(experiment_id, served, _logged_model_id(mlflow, served), experiment_name)


def _experiment_id(mlflow_module: Any, name: str) -> str:
    found = mlflow_module.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    uri = mlflow_module.get_tracking_uri()
    artifacts = None
    if uri.startswith("sqlite:///"):
        artifacts = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    return str(mlflow_module.create_experiment(name, artifact_location=artifacts))


def _logged_model_id(mlflow_module: Any, served: ServedModel) -> str | None:
    """The logged model (MLflow 3) `served`'s registry version was registered from, if any."""
    if not served.version:
        return None
    try:
        version = mlflow_module.MlflowClient().get_model_version(served.name, served.version)
    except Exception as error:  # traced, unlinked
        logger.debug("no registry version %s %s: %s", served.name, served.version, error)
        return None
    return logged_model_id(version)


def _chat_output(stored: Exchange) -> dict[str, Any]:
    """The answer as OpenAI's chat completion holds it, which MLflow's trace view shows as
    a chat."""
    return {
        "id": stored.response_id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": stored.answer},
                "finish_reason": stored.finish_reason,
            }
        ],
    }
