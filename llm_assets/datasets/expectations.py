"""Expectation suites for SFT rows (Great Expectations)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from llm_assets.cleaning.expectations import RESIDUAL_PII_REGEXES


def sft_rows_for_validation(frame: pd.DataFrame) -> pd.DataFrame:
    """Flat view of SFT rows that expectations can address column by column."""
    return pd.DataFrame(
        {
            "pair_id": frame["pair_id"],
            "instruction": frame["instruction"],
            "output": frame["output"],
            "turns": [len(messages) for messages in frame["messages"]],
            "last_role": [
                messages[-1]["role"] if len(messages) else None for messages in frame["messages"]
            ],
        }
    )


def sft_rows_expectations(max_chars: int) -> list[Any]:
    import great_expectations as gx

    return [
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
        gx.expectations.ExpectColumnValuesToBeUnique(column="pair_id"),
        gx.expectations.ExpectColumnValueLengthsToBeBetween(column="instruction", min_value=1),
        gx.expectations.ExpectColumnValueLengthsToBeBetween(
            column="output", min_value=1, max_value=max_chars
        ),
        gx.expectations.ExpectColumnValuesToBeBetween(column="turns", min_value=2),
        gx.expectations.ExpectColumnValuesToBeInSet(column="last_role", value_set=["assistant"]),
        gx.expectations.ExpectColumnValuesToNotMatchRegexList(
            column="output", regex_list=RESIDUAL_PII_REGEXES
        ),
    ]
