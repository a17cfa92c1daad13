"""What the blocking checks on `sft_dataset` compare: its rows against the prompts evaluation
holds out (red-team prompts, factual questions), and its grounded rows against how evaluation
and serving render the same question and chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from llm_assets.settings import RedTeamConfig, RetrievalConfig

# Grounded training rows rendered again three ways; a sample, as rendering is per row.
PARITY_ROWS = 16
# What a check shows of each leaked row.
LEAK_SHOWN = ["pair_id", "leaked_with", "match", "similarity"]


def training_rows(sft_dataset: Any) -> pd.DataFrame:
    """Every split of `sft_dataset` (a `datasets.DatasetDict`) as one frame."""
    return pd.concat([sft_dataset[name].to_pandas() for name in sft_dataset], ignore_index=True)


def context_parity(
    sft_dataset: Any,
    sft_pairs: pd.DataFrame,
    rag_chunks: pd.DataFrame,
    retrieval: RetrievalConfig,
    system_prompt: str | None,
) -> tuple[int, list[str]] | None:
    """How many grounded training rows were compared (the first `PARITY_ROWS`) and how their
    prompts differ from evaluation's and serving's rendering; None when no row carries
    context."""
    from llm_assets.serving.context_parity import context_parity_problems

    rows = training_rows(sft_dataset)
    if "context_chunk_ids" not in rows:
        return None
    grounded = rows[rows["context_chunk_ids"].map(len) > 0].head(PARITY_ROWS)
    problems = context_parity_problems(grounded, sft_pairs, rag_chunks, retrieval, system_prompt)
    return len(grounded), problems


def redteam_prompt_leaks(
    sft_dataset: Any, redteam: RedTeamConfig, base_dir: Path, threshold: float
) -> pd.DataFrame:
    """Training rows whose prompt is a red-team prompt of the suite, exactly or as a near
    duplicate (estimated Jaccard >= `threshold`)."""
    from llm_assets.datasets.leaks import find_leaks
    from llm_assets.evaluation.redteam import CANARY_CATEGORY, load_suite

    # Canary probes ask for what the planted canary rows hold, on purpose: they are left out.
    cases = [case for case in load_suite(redteam, base_dir) if case.category != CANARY_CATEGORY]
    held_out = pd.DataFrame(
        {
            "pair_id": [case.id for case in cases],
            "instruction": [case.prompt for case in cases],
            "input": "",
            "output": "",
        }
    )
    return find_leaks(held_out, training_rows(sft_dataset), threshold, answers=False)


def fact_question_leaks(
    sft_dataset: Any, questions: pd.DataFrame, threshold: float
) -> pd.DataFrame:
    """Training rows that match a held-out factual question (or its answer), exactly or as a
    near duplicate."""
    from llm_assets.datasets.leaks import find_leaks

    return find_leaks(questions, training_rows(sft_dataset), threshold)


def leaks_shown(leaked: pd.DataFrame, rows: int = 20) -> list[dict[str, object]]:
    """The first `rows` leaks, as the check's metadata lists them."""
    return leaked[LEAK_SHOWN].head(rows).to_dict("records")
