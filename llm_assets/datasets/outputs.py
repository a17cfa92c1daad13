"""A datasets check's verdict, in plain values; `llm_assets.defs` renders it. (Outputs are
`llm_assets.stage_output.StageOutput`, as in every stage.)"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DatasetCheck:
    """A check's verdict: whether it passed, one line for people, and what else it shows."""

    passed: bool
    description: str
    report: dict[str, object] = field(default_factory=dict)
