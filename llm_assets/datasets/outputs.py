"""What the datasets stage hands the Dagster layer: each output's value with what its asset page
shows, and each check's verdict. Values here are plain Python; `llm_assets.defs` renders them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import pandas as pd

ValueT = TypeVar("ValueT")


@dataclass(frozen=True)
class DatasetOutput(Generic[ValueT]):
    """One output of a datasets-stage function: its value, what its asset page shows (`report`,
    plain values), its data version, and the first rows in the columns a preview shows."""

    value: ValueT
    report: dict[str, object]
    data_version: str
    preview: pd.DataFrame | None = None


@dataclass(frozen=True)
class DatasetCheck:
    """A check's verdict: whether it passed, one line for people, and what else it shows."""

    passed: bool
    description: str
    report: dict[str, object] = field(default_factory=dict)
