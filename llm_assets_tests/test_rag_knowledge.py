import json
from pathlib import Path

import pandas as pd
import pytest

from llm_assets.datasets.leaks import find_leaks
from llm_assets.evaluation.redteam import load_suite
from llm_assets.rag.context import (
    CONTEXT_FORMAT_FILE,
    ContextFormat,
    grounded_messages,
    read_context_format,
    write_context_format,
)
from llm_assets.rag.index import RetrievedChunk
from llm_assets.rag.knowledge import golden_records_in_index, knowledge_records
from llm_assets.settings import RedTeamConfig

CORPUS = pd.DataFrame(
    {
        "source": ["docs", "docs", "tickets", "tickets"],
        "record_id": ["guide", "faq-page", "T1", "T2"],
        "text": ["…", "…", "…", "…"],
    }
)
GOLDEN = pd.DataFrame(
    {
        "source": ["docs", "tickets"],
        "record_id": ["guide", "T1"],
        "task": ["doc_section", "support_answer"],
    }
)


def test_index_keeps_documents_and_drops_records_a_golden_answer_came_from() -> None:
    kept = knowledge_records(CORPUS, GOLDEN, ["docs", "tickets"])
    # The guide is knowledge (its golden question is about it); ticket T1's resolution is the
    # golden answer itself.
    assert kept["record_id"].to_list() == ["guide", "faq-page", "T2"]
    assert knowledge_records(CORPUS, GOLDEN, ["docs"])["record_id"].to_list() == [
        "guide",
        "faq-page",
    ]


def test_chunks_cut_from_golden_answer_records_are_found() -> None:
    chunks = pd.DataFrame(
        {
            "chunk_id": ["docs/guide#0", "tickets/T1#0"],
            "source": ["docs", "tickets"],
            "record_id": ["guide", "T1"],
        }
    )
    assert golden_records_in_index(chunks, GOLDEN) == ["tickets/T1#0"]


def test_context_format_travels_with_the_model_folder(tmp_path: Path) -> None:
    assert read_context_format(tmp_path) is None
    write_context_format(tmp_path, ContextFormat(3, 900))
    assert read_context_format(tmp_path) == ContextFormat(3, 900)
    (tmp_path / CONTEXT_FORMAT_FILE).write_text('{"k": "three"}')
    with pytest.raises(ValueError, match=CONTEXT_FORMAT_FILE):
        read_context_format(tmp_path)


def test_grounded_messages_add_the_system_prompt_once_then_the_context() -> None:
    chunk = RetrievedChunk("docs/a#0", "a", "docs", "a.md", "Ports", "LAN sync uses 47123.", 1.0)
    user = {"role": "user", "content": "Which port?"}
    messages, used = grounded_messages([user], [chunk], "Be brief.", 500)
    assert used == ["docs/a#0"]
    assert messages[0]["content"].startswith("Be brief.\n\nAnswer with the help of")
    again, _ = grounded_messages(messages[:1] + [user], [], "Be brief.", 500)
    assert again == messages  # an existing system message is never doubled
    assert grounded_messages([user], [], None, 500) == ([user], [])


def test_hand_written_refusals_share_no_prompt_with_the_red_team() -> None:
    root = Path(__file__).resolve().parents[1]
    path = root / "data" / "sample" / "refusals" / "refusals.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    training = pd.DataFrame(
        {
            "pair_id": [str(n) for n in range(len(records))],
            "record_id": "r",
            "source": "refusals",
            "task": "instruction",
            "instruction": [r["instruction"] for r in records],
            "input": "",
            "output": [r["output"] for r in records],
        }
    )
    cases = load_suite(RedTeamConfig(), root / "conf")
    held_out = pd.DataFrame(
        {
            "pair_id": [c.id for c in cases],
            "instruction": [c.prompt for c in cases],
            "input": "",
            "output": "",
        }
    )
    assert len(training) >= 50
    assert find_leaks(held_out, training, 0.5, answers=False).empty
