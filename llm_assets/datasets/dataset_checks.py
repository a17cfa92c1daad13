"""What the checks on the SFT dataset prove: rows well formed, no golden pair leaked into
training, a ledger that accounts for every pair, and a saved chat template that renders exactly
as serving does."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from llm_assets.contracts import BaseModelFolder, ChatTemplate
from llm_assets.datasets.expectations import sft_rows_expectations, sft_rows_for_validation
from llm_assets.datasets.leaks import find_leaks
from llm_assets.datasets.ledger import dataset_ledger_discrepancies
from llm_assets.datasets.lengths import conversation_token_counts
from llm_assets.datasets.outputs import DatasetCheck
from llm_assets.expectations import SuiteOutcome, run_suite

if TYPE_CHECKING:
    from datasets import DatasetDict

MAX_OUTPUT_CHARS = 20_000
CHECK_ROWS = 16


def split_rows(sft_dataset: DatasetDict) -> pd.DataFrame:
    """Every split's rows as one frame."""
    return pd.concat([sft_dataset[name].to_pandas() for name in sft_dataset], ignore_index=True)


def well_formed_rows(
    frame: pd.DataFrame, suite: str, max_tokens: int | None = None
) -> SuiteOutcome:
    """`frame`'s SFT rows against the expectations of a well-formed row (at most `max_tokens`
    tokens, when given)."""
    return run_suite(
        sft_rows_for_validation(frame), suite, sft_rows_expectations(MAX_OUTPUT_CHARS, max_tokens)
    )


def golden_leak_check(
    sft_dataset: DatasetDict, golden_set: pd.DataFrame, threshold: float
) -> DatasetCheck:
    """Passes when no train/validation pair matches a golden pair, exactly or as a near
    duplicate at `threshold`."""
    leaked = find_leaks(golden_set, split_rows(sft_dataset), threshold)
    return DatasetCheck(
        passed=leaked.empty,
        description=f"{len(leaked)} train/validation pairs match a golden pair",
        report={
            "leaks": leaked[["pair_id", "leaked_with", "match", "similarity"]]
            .head(20)
            .to_dict("records"),
            "by_match": leaked.groupby("match").size().to_dict(),
        },
    )


def dataset_ledger_check(
    dataset_ledger: pd.DataFrame,
    cleaned_corpus: pd.DataFrame,
    sft_pairs: pd.DataFrame,
    golden_set: pd.DataFrame,
    sft_dataset: DatasetDict,
) -> DatasetCheck:
    """Passes when the ledger accounts for every record and pair once and agrees with the
    stored splits."""
    problems = dataset_ledger_discrepancies(
        dataset_ledger,
        cleaned_corpus,
        sft_pairs,
        golden_set,
        {name: len(sft_dataset[name]) for name in sft_dataset},
    )
    return DatasetCheck(
        passed=not problems,
        description="; ".join(problems) or f"{len(dataset_ledger)} rows account for all",
        report={"problems": problems},
    )


def sample_conversations(sft_dataset: Any, rows: int = CHECK_ROWS) -> list[dict[str, Any]]:
    """The first rows of each split, as plain {messages, token_count} dicts."""
    sample = []
    for name in sft_dataset:
        split = sft_dataset[name]
        for row in split.select(range(min(rows // len(sft_dataset), len(split)))):
            messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
            sample.append({"messages": messages, "token_count": int(row["token_count"])})
    return sample


def serving_render_check(
    sft_dataset: DatasetDict, chat_template: ChatTemplate, base_model: BaseModelFolder
) -> DatasetCheck:
    """Passes when sample rows render to the same text, token ids and token counts with the
    template saved beside the dataset and with the base tokenizer as serving loads it."""
    from llm_assets.datasets.chat_template import (
        load_chat_tokenizer,
        template_differences,
        template_digest,
    )

    saved = Path(chat_template.path).read_text(encoding="utf-8")
    problems = []
    if template_digest(saved) != chat_template.digest:
        problems.append(f"{chat_template.path} was changed after the dataset was built")
    sample = sample_conversations(sft_dataset)
    conversations = [row["messages"] for row in sample]
    serving = load_chat_tokenizer(base_model.path)
    problems += template_differences(
        load_chat_tokenizer(base_model.path, chat_template=saved), serving, conversations
    )
    recounted = conversation_token_counts(serving, conversations)
    problems += [
        f"row {number}: {row['token_count']} tokens stored, {count} when served"
        for number, (row, count) in enumerate(zip(sample, recounted, strict=True))
        if row["token_count"] != count
    ]
    return DatasetCheck(
        passed=not problems,
        description=f"{len(sample)} conversations compared; {len(problems)} differences",
        report={"differences": problems[:20]},
    )
