"""What an export step returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

ValueT = TypeVar("ValueT")


@dataclass(frozen=True)
class ExportRun(Generic[ValueT]):
    """What a step made (`value`), what its asset page shows (`report`: plain values, paths as
    `Path`, tables as DataFrames), and the data version of what it made."""

    value: ValueT
    report: dict[str, object]
    data_version: str
