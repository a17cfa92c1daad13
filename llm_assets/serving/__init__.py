"""Serving: an OpenAI-compatible HTTP API and a chat page over the champion model, and the store
of every exchange and its feedback (the next quarter's training data).

protocol.py   request and response bodies, limits, server-sent event chunks
engine.py     the generation engine: transformers in this process, or vLLM on a GPU machine
models.py     which model is served: a registry version (champion, a number, an alias) or a folder
context.py    retrieved chunks as a system message (RAG)
store.py      exchanges and feedback in SQL (SQLite by default, Postgres in production)
app.py        the FastAPI app
server.py     what `llm-assets serve` runs
"""
