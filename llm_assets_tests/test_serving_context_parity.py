import pandas as pd

from llm_assets.datasets.retrieval import with_retrieved_context
from llm_assets.rag.index import RetrievedChunk
from llm_assets.serving.context_parity import context_parity_problems
from llm_assets.settings import RetrievalConfig

SYSTEM = "You are the support assistant."
CHUNKS = pd.DataFrame(
    {
        "chunk_id": ["docs/lan#0", "docs/sso#0"],
        "record_id": ["lan", "sso"],
        "source": ["docs", "docs"],
        "uri": ["lan-sync.html", "sso-setup.html"],
        "heading": ["LAN sync > Ports", "SSO"],
        "text": ["LAN sync uses UDP 47123 and TCP 47124.", "SSO needs a Team plan."],
    }
)
PAIRS = pd.DataFrame(
    {
        "pair_id": ["p1"],
        "messages": [
            [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": "Which ports does LAN sync use?"},
                {"role": "assistant", "content": "UDP 47123 and TCP 47124."},
            ]
        ],
    }
)
CONFIG = RetrievalConfig(enabled=True, k=2, max_context_chars=600)


def _search(queries: list[str], k: int) -> list[list[RetrievedChunk]]:
    hits = [
        RetrievedChunk(r.chunk_id, r.record_id, r.source, r.uri, r.heading, r.text, 0.9)
        for r in CHUNKS.itertuples()
    ]
    return [hits[:k] for _ in queries]


def test_training_rows_render_as_evaluation_and_serving_render_them() -> None:
    rows = with_retrieved_context(PAIRS, _search, CONFIG, seed=0)
    assert context_parity_problems(rows, PAIRS, CHUNKS, CONFIG, SYSTEM) == []


def test_a_row_rendered_another_way_is_reported() -> None:
    rows = with_retrieved_context(PAIRS, _search, CONFIG, seed=0)
    drifted = rows.copy()
    messages = [dict(m) for m in drifted.at[0, "messages"]]
    messages[0]["content"] = messages[0]["content"].replace("[1] (", "[1] from (")
    drifted.at[0, "messages"] = messages
    problems = context_parity_problems(drifted, PAIRS, CHUNKS, CONFIG, SYSTEM)
    assert problems == [
        "p1: evaluation renders another prompt than training stored",
        "p1: serving renders another prompt than training stored",
    ]
    narrower = RetrievalConfig(enabled=True, k=2, max_context_chars=120)
    assert context_parity_problems(rows, PAIRS, CHUNKS, narrower, SYSTEM)
