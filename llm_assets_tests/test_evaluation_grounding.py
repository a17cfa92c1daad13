from pathlib import Path

import pytest

from llm_assets.evaluation.facts import (
    FactFileError,
    chunks_holding_facts,
    facts_stated,
    read_fact_questions,
)
from llm_assets.evaluation.grounding import content_terms, ground_prompts, groundedness
from llm_assets.rag.context import CONTEXT_PREAMBLE, ContextFormat
from llm_assets.rag.index import RetrievedChunk

QUESTION = "How long is version history kept on the Pro plan?"
CONTEXT = (
    "Version history: Free keeps 30 days, Pro keeps 180 days and Team 365 days. Restore "
    "from the web app under Deleted files, or run `aurora restore --path ~/Aurora/report.pdf`."
)


def test_content_terms_keep_numbers_paths_and_words_but_not_stop_words() -> None:
    terms = content_terms("On Pro it is 180 days: run `aurora restore --path ~/Aurora/a.pdf`.")
    assert terms == ["pro", "180", "days", "run", "aurora", "restore", "path", "~/aurora/a.pdf"]


def test_a_grounded_answer_scores_high_and_an_invented_one_low() -> None:
    grounded = "Pro keeps 180 days of version history; restore from Deleted files in the web app."
    invented = "Version history goes back 72 hours on Pro; run sudo chown -R /Users/me/Documents."
    assert groundedness(grounded, [QUESTION, CONTEXT]) == pytest.approx(1.0)
    assert groundedness(invented, [QUESTION, CONTEXT]) < 0.5
    assert groundedness("It is so.", [QUESTION]) == 1.0  # stop words only: nothing to check


def test_closed_book_prompts_get_only_the_system_prompt() -> None:
    grounded = ground_prompts(
        [[{"role": "user", "content": QUESTION}]], None, ContextFormat(), "Be brief."
    )
    assert grounded.conversations == [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    ]
    assert grounded.chunk_ids == [[]] and grounded.contexts == [""]


def test_prompts_with_retrieval_record_the_chunks_and_their_texts() -> None:
    chunk = RetrievedChunk("docs/v#0", "v", "docs", "v.md", "History", CONTEXT, 0.8)

    def search_many(questions: list[str], k: int) -> list[list[RetrievedChunk]]:
        assert k == 2
        return [[chunk] for _ in questions]

    grounded = ground_prompts(
        [[{"role": "user", "content": QUESTION}]], search_many, ContextFormat(2, 900), None
    )
    assert grounded.chunk_ids == [["docs/v#0"]]
    assert grounded.chunk_texts == [[CONTEXT]]
    assert grounded.conversations[0][0]["content"].startswith(CONTEXT_PREAMBLE)
    assert "180 days" in grounded.contexts[0]


def test_facts_are_stated_whatever_the_case_and_spacing() -> None:
    assert facts_stated("Pro costs  $11.99 a month.", ["$11.99"])
    assert facts_stated("Use AES-256-gcm and port 47123.", ["aes-256-GCM", "47123"])
    assert not facts_stated("Pro costs $12 a month.", ["$11.99"])
    assert chunks_holding_facts(["a", "b"], ["costs $11.99", "free"], ["$11.99"]) == ["a"]


def test_fact_file_rows_read_as_held_out_pairs(tmp_path: Path) -> None:
    path = tmp_path / "facts.jsonl"
    path.write_text(
        '{"id": "f1", "question": "Price of Pro?", "facts": ["$11.99"], "doc": "billing.md"}\n'
    )
    frame = read_fact_questions(path)
    assert frame.iloc[0].to_dict() == {
        "pair_id": "f1",
        "instruction": "Price of Pro?",
        "input": "",
        "output": "",
        "facts": ["$11.99"],
        "doc": "billing.md",
    }


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "facts.jsonl:1: not valid JSON"),
        ('{"question": "Q?", "facts": []}', "facts.jsonl:1: needs `facts`"),
        ('{"facts": ["x"]}', "facts.jsonl:1: needs a non-empty string `question`"),
    ],
)
def test_bad_fact_rows_name_the_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "facts.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(FactFileError, match=problem.replace("`", "`")):
        read_fact_questions(path)


def test_the_shipped_fact_questions_state_facts_their_documents_hold() -> None:
    root = Path(__file__).resolve().parents[1] / "data" / "sample"
    frame = read_fact_questions(root / "factual" / "questions.jsonl")
    assert len(frame) >= 30
    for row in frame.itertuples():
        text = (root / "docs" / row.doc).read_text(encoding="utf-8")
        assert facts_stated(text, row.facts), (row.pair_id, row.facts)


def _training_rows(*prompts: str) -> object:
    import datasets

    count = len(prompts)
    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {
                    "pair_id": [f"row-{n}" for n in range(count)],
                    "record_id": ["record"] * count,
                    "source": ["docs"] * count,
                    "task": ["doc_section"] * count,
                    "instruction": list(prompts),
                    "input": [""] * count,
                    "output": ["See the documentation."] * count,
                }
            )
        }
    )


def _first_question(path: Path) -> str:
    return str(read_fact_questions(path)["instruction"].iloc[0])


def test_the_fact_leak_check_holds_out_the_dev_questions_as_well_as_the_reported_ones() -> None:
    from llm_assets.defs.grounding import fact_question_leak_check
    from llm_assets.settings import load_profile
    from llm_assets_tests.conftest import TINY_PROFILE

    profile = load_profile(TINY_PROFILE)
    dev, held_out = profile.dev_facts_path(), profile.facts_path()
    assert dev is not None and held_out is not None
    check = fact_question_leak_check(profile)
    clean = "How do I change the language of the desktop app?"

    assert check(_training_rows(clean)).passed
    for leaked in (_first_question(dev), _first_question(held_out)):
        result = check(_training_rows(clean, leaked))
        assert not result.passed, leaked
        assert "1 train/validation prompts match a factual question" in str(result.description)
    without_files = profile.model_copy(
        update={
            "evaluation": profile.evaluation.model_copy(
                update={"facts_file": None, "dev_facts_file": None}
            )
        }
    )
    assert fact_question_leak_check(without_files)(_training_rows(_first_question(dev))).passed
