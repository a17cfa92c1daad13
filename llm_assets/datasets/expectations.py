"""Expectation suites for SFT rows (Great Expectations)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from llm_assets.cleaning.expectations import RESIDUAL_PII_REGEXES


def sft_rows_for_validation(frame: pd.DataFrame) -> pd.DataFrame:
    """Flat view of SFT rows that expectations can address column by column."""
    flat = pd.DataFrame(
        {
            "pair_id": frame["pair_id"],
            "instruction": frame["instruction"],
            "input": frame["input"].fillna(""),
            "output": frame["output"],
            "turns": [len(messages) for messages in frame["messages"]],
            "last_role": [
                messages[-1]["role"] if len(messages) else None for messages in frame["messages"]
            ],
        }
    )
    if "token_count" in frame:
        flat["token_count"] = frame["token_count"].to_numpy()
    return flat


def sft_rows_expectations(max_chars: int, max_tokens: int | None = None) -> list[Any]:
    """Schema, non-empty bounded answers as the last turn, no PII patterns in prompt or answer;
    with `max_tokens`, every row's `token_count` within it."""
    import great_expectations as gx

    expectations = [
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
        gx.expectations.ExpectColumnValuesToBeUnique(column="pair_id"),
        gx.expectations.ExpectColumnValueLengthsToBeBetween(column="instruction", min_value=1),
        gx.expectations.ExpectColumnValueLengthsToBeBetween(
            column="output", min_value=1, max_value=max_chars
        ),
        gx.expectations.ExpectColumnValuesToBeBetween(column="turns", min_value=2),
        gx.expectations.ExpectColumnValuesToBeInSet(column="last_role", value_set=["assistant"]),
    ]
    expectations += [
        gx.expectations.ExpectColumnValuesToNotMatchRegexList(
            column=column, regex_list=RESIDUAL_PII_REGEXES
        )
        for column in ("instruction", "input", "output")
    ]
    if max_tokens is not None:
        expectations.append(
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="token_count", min_value=1, max_value=max_tokens
            )
        )
    return expectations
