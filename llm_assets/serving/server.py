"""What `llm-assets serve` runs: the model chosen and loaded once, the store opened (tables
created), the RAG index opened when asked for, the serving experiment every exchange is traced
into, then uvicorn."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from llm_assets.rag.context import ContextFormat, read_context_format
from llm_assets.serving.models import ServedModel, served_from_folder, served_from_registry
from llm_assets.settings import Profile, default_tracking_uri

TOKEN_ENV_VAR = "LLM_ASSETS_SERVE_TOKEN"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class ServeRefused(RuntimeError):
    """The server must not start as asked; the message says why and what to do."""


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    model_version: str | None = None  # a number or an alias; None: the champion
    adapter: str | None = None  # a folder served without the registry
    rag: bool = False
    no_auth: bool = False
    tracking_uri: str | None = None


def serve_token(options: ServeOptions) -> str | None:
    """The bearer token clients must send, from $LLM_ASSETS_SERVE_TOKEN; None only with
    --no-auth, which is refused on any address but loopback."""
    token = os.environ.get(TOKEN_ENV_VAR, "").strip()
    if options.no_auth:
        if options.host not in LOOPBACK_HOSTS:
            raise ServeRefused(
                f"--no-auth serves anyone who can reach {options.host}; it is allowed on "
                f"loopback only ({', '.join(LOOPBACK_HOSTS)}): set {TOKEN_ENV_VAR} instead"
            )
        return None
    if not token:
        raise ServeRefused(
            f"{TOKEN_ENV_VAR} is not set: clients authenticate with this bearer token. Set it "
            f"(e.g. export {TOKEN_ENV_VAR}=$(openssl rand -hex 24)), or pass --no-auth to serve "
            "on 127.0.0.1 without one"
        )
    if len(token) < 16:
        raise ServeRefused(f"{TOKEN_ENV_VAR} is shorter than 16 characters; use a random one")
    return token


def resolve_served_model(profile: Profile, options: ServeOptions) -> ServedModel:
    """`--adapter` when given; else the registry version `--model-version` names, or the
    champion, of `use_case.registered_model_name`."""
    name = profile.use_case.registered_model_name
    if options.adapter:
        return served_from_folder(options.adapter, name=name)
    import mlflow

    if options.tracking_uri:
        mlflow.set_tracking_uri(options.tracking_uri)
    return served_from_registry(mlflow, name, options.model_version)


def decodes_context_aware(profile: Profile, rag: bool) -> bool:
    """Whether served answers read retrieved context and are decoded context-aware: then every
    step's logits are needed, which the engines' own servers do not return (llama-cpp is run
    in the gateway's process instead, vLLM refuses)."""
    return rag and profile.evaluation.generation.context_contrast > 0


def build_app(
    profile: Profile,
    served: ServedModel,
    token: str | None,
    rag: bool,
    context: ContextFormat | None = None,
) -> Any:
    """The app over `served`, loaded with the profile's engine, storing into the profile's
    database and tracing into serving.trace_experiment of the current MLflow tracking store;
    with `rag`, over the latest materialized rag_index, `context` chunks and characters
    (default: serving.rag_k and rag_max_chars)."""
    from llm_assets.serving.app import create_app
    from llm_assets.serving.engine import load_engine
    from llm_assets.serving.guardrails import guardrails_for
    from llm_assets.serving.store import ExchangeStore, Redactor, database_url, open_database
    from llm_assets.serving.tracing import exchange_tracer, serving_experiment_name

    config = profile.serving
    redactor = Redactor.from_cleaning(profile.cleaning)
    redactor.warm_up()
    store = ExchangeStore(open_database(database_url(config.database_url_env)), redactor)
    retrieve = None
    if rag:
        from llm_assets.rag.retrieval import read_manifest
        from llm_assets.rag.retrieval import retrieve as retrieve_chunks

        read_manifest()  # says how to build the index when none is materialized
        retrieve_chunks("warm-up", 1)  # opens the store and embedder now, not in a request
        retrieve = retrieve_chunks
    contrasted = decodes_context_aware(profile, rag)
    if config.engine == "llama-cpp":
        import mlflow

        from llm_assets.serving.models import gguf_export_of

        export = gguf_export_of(mlflow, served, config.gguf_format)
        if contrasted:
            from llm_assets.serving.llama_cpp_local import LlamaCppLocalEngine

            engine: Any = LlamaCppLocalEngine.start(export)
        else:
            from llm_assets.serving.llama_cpp_server import LlamaCppServerEngine

            engine = LlamaCppServerEngine.start(export, threads=config.engine_threads)
    elif config.engine == "vllm":
        from llm_assets.serving.vllm_server import VllmServerEngine, refuse_context_contrast

        if contrasted:
            refuse_context_contrast(profile.evaluation.generation.context_contrast)
        engine = VllmServerEngine.start(
            served.model, profile.evaluation.generation.repetition_penalty
        )
    else:
        engine = load_engine(config.engine, served.model)
    guardrails = guardrails_for(
        served.model.adapter_path, profile.guardrails, profile.cleaning.pii_allow_list
    )
    tracer = exchange_tracer(served, serving_experiment_name(served, config.trace_experiment))
    app = create_app(
        engine,
        store,
        served,
        config,
        profile.evaluation.generation,
        token,
        retrieve,
        system_prompt=profile.datasets.system_prompt,
        context=context,
        guardrails=guardrails,
        tracer=tracer,
    )
    app.state.engine = engine
    app.state.guardrails = guardrails
    app.state.tracer = tracer
    return app


def served_retrieval(
    profile: Profile, options: ServeOptions, served: ServedModel
) -> tuple[bool, ContextFormat | None]:
    """Whether answers are grounded in the rag_index, and in which format: a model trained
    with retrieved context is always asked with it, as it was trained (read from its folder,
    not a flag to remember); other models when --rag or serving.rag asks for it."""
    trained_with = read_context_format(served.model.adapter_path)
    return bool(options.rag or profile.serving.rag or trained_with), trained_with


def run_server(profile: Profile, options: ServeOptions) -> None:
    """Serve until interrupted (Ctrl+C)."""
    import mlflow
    import uvicorn

    token = serve_token(options)
    # Traces go to the store the registry is read from; a folder served without the registry
    # is traced into the local store (MLflow's own default is ./mlflow.db wherever serve runs).
    tracking_uri = options.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri or default_tracking_uri())
    served = resolve_served_model(profile, options)
    weights = served.gguf_dir or served.model.adapter_path or served.model.base_model_path
    engine_name: str = profile.serving.engine
    rag, trained_with = served_retrieval(profile, options, served)
    if engine_name == "llama-cpp":
        where = "in process" if decodes_context_aware(profile, rag) else ""
        engine_name += f" ({', '.join(filter(None, [profile.serving.gguf_format, where]))})"
    print(f"serving {served.name}: {served.source} ({weights}), engine {engine_name}")
    app = build_app(profile, served, token, rag, trained_with)
    where = f"http://{options.host}:{options.port}"
    print(f"OpenAI API: {where}/v1   chat page: {where}/", end="")
    print(f"#token=<{TOKEN_ENV_VAR}>" if token else "   (no authentication)")
    tracer = app.state.tracer
    if tracer.experiment_id is not None:
        print(
            f"traces: MLflow experiment {tracer.experiment_name!r} in {mlflow.get_tracking_uri()}"
        )
    if rag:
        why = " (the model was trained with them)" if trained_with else ""
        print(f"RAG: the closest rag_index chunks are given to the model as context{why}")
        if contrast := profile.evaluation.generation.context_contrast:
            print(f"context-aware decoding: alpha {contrast} against the prompt without context")
    guard = app.state.guardrails
    if rag and guard.min_relevance is not None:
        print(
            f"scope guard: questions whose closest chunk scores under {guard.min_relevance:.3f} "
            "get guardrails.scope.reply"
        )
    try:
        uvicorn.run(app, host=options.host, port=options.port, log_level="info")
    finally:
        # The llama.cpp and vLLM engines are processes of their own: they stop with the gateway.
        close = getattr(app.state.engine, "close", None)
        if close is not None:
            close()
