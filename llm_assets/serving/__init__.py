"""Serving: an OpenAI-compatible HTTP API and a chat page over the champion model, and the store
of every exchange and its feedback (the next quarter's training data).

protocol.py   request and response bodies, limits, server-sent event chunks
engine.py     the generation engine interface, and transformers in this process
engine_process.py    an engine in a process of its own, started, health-checked and proxied
llama_cpp_server.py  the default engine: llama.cpp's server over the GGUF export
vllm_server.py       on a GPU machine: vLLM's OpenAI server, adapters as LoRA modules
models.py     which model is served: a registry version (champion, a number, an alias) or a folder
guardrails.py the scope guard and unseen-PII withholding around every answer (evaluation too)
store.py      exchanges and feedback in SQL (SQLite by default, Postgres in production)
app.py        the FastAPI app
server.py     what `llm-assets serve` runs
"""
