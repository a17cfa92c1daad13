from collections.abc import Sequence

import pandas as pd
import pytest

from llm_assets.datasets.retrieval import (
    ORACLE_MIN_SCORE,
    includes_oracle,
    raft_context,
    with_retrieved_context,
    without_context_gaps,
)
from llm_assets.rag.context import CONTEXT_PREAMBLE
from llm_assets.rag.index import RetrievedChunk
from llm_assets.settings import RetrievalConfig


def chunk(name: str, heading: str = "", score: float = 0.9, record: str = "") -> RetrievedChunk:
    return RetrievedChunk(
        f"docs/{record or name}#0", record or name, "docs", f"{name}.md", heading, name, score
    )


ORACLE = chunk("oracle", "Plans", record="billing")
SAME_SECTION = RetrievedChunk("docs/billing#1", "billing", "docs", "b.md", "Plans", "more", 0.8)
OTHERS = [chunk(f"other{n}") for n in range(6)]


def test_context_with_the_oracle_keeps_retrieval_order_and_adds_a_missed_oracle() -> None:
    found = raft_context([OTHERS[0], ORACLE, OTHERS[1]], ORACLE, with_oracle=True, k=2)
    assert [c.chunk_id for c in found.chunks] == [OTHERS[0].chunk_id, ORACLE.chunk_id]
    missed = raft_context(OTHERS, ORACLE, with_oracle=True, k=3)
    assert [c.chunk_id for c in missed.chunks] == [
        *(c.chunk_id for c in OTHERS[:2]),
        "docs/billing#0",
    ]
    assert missed.has_oracle and missed.oracle_chunk_id == ORACLE.chunk_id


def test_context_without_the_oracle_leaves_out_its_whole_section() -> None:
    found = raft_context([ORACLE, SAME_SECTION, *OTHERS], ORACLE, with_oracle=False, k=3)
    assert [c.chunk_id for c in found.chunks] == [c.chunk_id for c in OTHERS[:3]]
    assert not found.has_oracle


def test_oracle_choice_is_stable_and_independent_of_row_order() -> None:
    assert includes_oracle("pair-7", 42, 0.5) == includes_oracle("pair-7", 42, 0.5)
    assert all(includes_oracle(f"p{n}", 1, 1.0) for n in range(50))
    assert not any(includes_oracle(f"p{n}", 1, 0.0) for n in range(50))


def _pairs(count: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pair_id": [f"pair-{n}" for n in range(count)],
            "messages": [
                [
                    {"role": "system", "content": "You are the support assistant."},
                    {"role": "user", "content": f"question {n}"},
                    {"role": "assistant", "content": f"answer {n}"},
                ]
                for n in range(count)
            ],
        }
    )


def _search(queries: Sequence[str], k: int) -> list[list[RetrievedChunk]]:
    """Answers find their oracle; questions find distractors, the oracle third."""
    hits = []
    for query in queries:
        if query.startswith("answer"):
            hits.append([ORACLE])
        else:
            hits.append([*OTHERS[:2], ORACLE, *OTHERS[2:]][:k])
    return hits


@pytest.mark.parametrize(
    ("share", "k", "max_chars"), [(0.2, 2, 2000), (0.8, 2, 2000), (0.8, 3, 180)]
)
def test_oracle_share_on_a_thousand_rows_is_within_five_points(
    share: float, k: int, max_chars: int
) -> None:
    """Counted in the rendered context: at 180 characters only two of three chunks fit, so an
    oracle retrieved third would be cut off and the row would not hold it."""
    config = RetrievalConfig(enabled=True, k=k, oracle_share=share, max_context_chars=max_chars)
    rows = with_retrieved_context(_pairs(1000), _search, config, seed=42)
    assert abs(rows["context_has_oracle"].mean() - share) <= 0.05
    with_oracle = rows[rows["context_has_oracle"]]
    assert all(ORACLE.chunk_id in ids for ids in with_oracle["context_chunk_ids"])
    without = rows[~rows["context_has_oracle"]]
    assert not any(ORACLE.chunk_id in ids for ids in without["context_chunk_ids"])


def test_an_oracle_the_budget_cuts_off_takes_the_last_place_that_fits() -> None:
    config = RetrievalConfig(enabled=True, k=3, oracle_share=1.0, max_context_chars=180)
    row = with_retrieved_context(_pairs(1), _search, config, seed=0).iloc[0]
    assert row["context_chunk_ids"] == [OTHERS[0].chunk_id, ORACLE.chunk_id]
    assert "[2] (oracle.md > Plans)\noracle" in row["messages"][0]["content"]


def test_an_oracle_no_budget_can_hold_is_not_counted_as_held() -> None:
    long_heading = chunk("oracle", "Plans " * 30, record="billing")

    def search(queries: Sequence[str], k: int) -> list[list[RetrievedChunk]]:
        return [[long_heading] if q.startswith("answer") else OTHERS[:k] for q in queries]

    config = RetrievalConfig(enabled=True, k=2, oracle_share=1.0, max_context_chars=150)
    row = with_retrieved_context(_pairs(1), search, config, seed=0).iloc[0]
    assert not row["context_has_oracle"]
    assert long_heading.chunk_id not in row["context_chunk_ids"]


def test_context_joins_the_pairs_system_message_and_the_answer_is_kept() -> None:
    config = RetrievalConfig(enabled=True, k=2, oracle_share=1.0)
    row = with_retrieved_context(_pairs(1), _search, config, seed=0).iloc[0]
    system, user, assistant = row["messages"]
    assert system["content"].startswith("You are the support assistant.\n\n" + CONTEXT_PREAMBLE)
    assert "[2] (oracle.md > Plans)" in system["content"]
    assert (user["content"], assistant["content"]) == ("question 0", "answer 0")
    assert row["context_chunk_ids"] == [OTHERS[0].chunk_id, ORACLE.chunk_id]


def test_answers_far_from_every_chunk_get_distractors_only() -> None:
    far = RetrievedChunk("docs/x#0", "x", "docs", "x.md", "", "x", ORACLE_MIN_SCORE - 0.01)

    def search(queries: Sequence[str], k: int) -> list[list[RetrievedChunk]]:
        return [[far] if q.startswith("answer") else OTHERS[:k] for q in queries]

    config = RetrievalConfig(enabled=True, k=2, oracle_share=1.0)
    rows = with_retrieved_context(_pairs(20), search, config, seed=0)
    assert not rows["context_has_oracle"].any()
    assert set(rows["oracle_chunk_id"]) == {""}


def test_rows_planted_after_grounding_get_an_empty_context() -> None:
    config = RetrievalConfig(enabled=True, k=2)
    grounded = with_retrieved_context(_pairs(2), _search, config, seed=0)
    planted = pd.concat([grounded, _pairs(1).assign(pair_id="canary")], ignore_index=True)
    filled = without_context_gaps(planted)
    assert filled["context_chunk_ids"].iloc[-1] == []
    assert filled["oracle_chunk_id"].iloc[-1] == ""
    assert filled["context_has_oracle"].dtype == bool
