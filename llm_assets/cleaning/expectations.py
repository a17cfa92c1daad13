"""Expectation suites for raw and cleaned records (Great Expectations)."""

from __future__ import annotations

from typing import Any

from llm_assets.cleaning.ledger import ACTIONS

# Strict shapes only: a check must not fail on text the redactor rightly left alone.
RESIDUAL_PII_REGEXES = [
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    r"\b\d{3}-\d{2}-\d{4}\b",
    r"\b\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}\b",
]


def raw_records_expectations(source_name: str) -> list[Any]:
    import great_expectations as gx

    return [
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="record_id"),
        gx.expectations.ExpectColumnValuesToBeUnique(column="record_id"),
        gx.expectations.ExpectColumnValuesToBeInSet(column="source", value_set=[source_name]),
    ]


def cleaned_corpus_expectations(min_chars: int, max_chars: int) -> list[Any]:
    import great_expectations as gx

    return [
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="record_id"),
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["source", "record_id"]),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="text"),
        gx.expectations.ExpectColumnValuesToBeUnique(column="content_hash"),
        gx.expectations.ExpectColumnValueLengthsToBeBetween(
            column="text", min_value=max(min_chars, 1), max_value=max_chars
        ),
    ]


def no_pii_expectations() -> list[Any]:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToNotMatchRegexList(
            column=column, regex_list=RESIDUAL_PII_REGEXES
        )
        for column in ("text", "response", "fields")
    ]


def ledger_expectations() -> list[Any]:
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeInSet(column="action", value_set=list(ACTIONS)),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="record_id"),
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["source", "record_id"]),
    ]
