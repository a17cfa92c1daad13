"""What an evaluation or promotion step returns, and the MLflow store it is handed (it never
opens one itself: the Dagster layer passes the resource in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

ValueT = TypeVar("ValueT")


@dataclass(frozen=True)
class EvaluationRun(Generic[ValueT]):
    """What a step made (`value`), what its asset page shows (`report`: plain values, paths as
    `Path`, links as `Link`, Markdown as `Markdown`), and the data version of what it made
    (None: the asset keeps Dagster's own)."""

    value: ValueT
    report: dict[str, object]
    data_version: str | None = None


class MlflowStore(Protocol):
    """The MLflow store (`MlflowResource`): the `mlflow` module pointed at it, and the pages of
    its runs and registry versions."""

    def tracking(self) -> Any: ...

    def run_url(self, run: Any) -> str: ...

    def model_version_url(self, name: str, version: str) -> str: ...
