"""The instruction pairs the cleaned corpus yields, and the golden hold-out sampled from them.

`run_sft_pairs` builds every pair (calling the teacher, if configured); `run_golden_set` holds
out the evaluation set. Both return a `StageOutput` with what the asset page shows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from llm_assets.datasets.config import DatasetConfig
from llm_assets.datasets.golden_file import combine_golden, read_golden_file
from llm_assets.datasets.sft import build_sft_pairs
from llm_assets.datasets.splits import split_golden
from llm_assets.stage_output import StageOutput
from llm_assets.storage import frame_digest

PAIRS_PREVIEW = ["source", "task", "instruction", "output"]


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def run_sft_pairs(
    cleaned_corpus: pd.DataFrame,
    config: DatasetConfig,
    work_dir: Callable[[str, str], Path],
    warn: Callable[[str], None],
) -> StageOutput[pd.DataFrame]:
    """Every pair `cleaned_corpus` yields under `config`. `work_dir(name, inputs_digest)`: a
    folder kept across runs (the teacher's reply cache); `warn`: where the first teacher
    failures are reported."""
    from llm_assets.datasets.teacher import TeacherClient

    teacher = None
    if config.teacher.enabled:
        cache = work_dir("teacher_cache", _digest([config.teacher.url, config.teacher.model]))
        teacher = TeacherClient.from_config(config.teacher, cache_dir=cache)
    built = build_sft_pairs(cleaned_corpus, config, teacher)
    pairs = built.pairs
    report: dict[str, object] = {
        "dagster/row_count": len(pairs),
        "by_task": pairs.groupby("task").size().to_dict(),
        "records_without_pairs": built.skipped.groupby("reason").size().to_dict(),
    }
    if built.teacher is not None and teacher is not None:
        report |= {
            "teacher_pairs": built.teacher.pairs,
            "teacher_sections_sent": built.teacher.sections_sent,
            "teacher_sections_over_budget": built.teacher.sections_over_budget,
            "teacher_requests": teacher.requests_sent,
            "teacher_cache_hits": teacher.cache_hits,
            "teacher_failures": built.teacher.failures[:20],
        }
        for failure in built.teacher.failures[:5]:
            warn(failure)
    return StageOutput(pairs, report, frame_digest(pairs), preview=pairs[PAIRS_PREVIEW])


def run_golden_set(
    sft_pairs: pd.DataFrame, config: DatasetConfig, golden_path: Path | None
) -> StageOutput[pd.DataFrame]:
    """The golden set: pairs sampled from `sft_pairs` (unless the golden file at `golden_path`
    replaces them), plus that file's rows."""
    from_file = read_golden_file(golden_path, config.system_prompt) if golden_path else None
    sampled, _ = (
        split_golden(sft_pairs, config.golden_size, config.seed, config.leak_threshold)
        if from_file is None or config.golden_file_mode == "extend"
        else (sft_pairs.iloc[0:0], sft_pairs)
    )
    golden = combine_golden(sampled, from_file, config.golden_file_mode)
    strata = golden.groupby(["source", "task"]).size().rename("rows").reset_index()
    return StageOutput(
        golden,
        {
            "dagster/row_count": len(golden),
            "sampled_rows": len(sampled),
            "golden_file_rows": 0 if from_file is None else len(from_file),
            "golden_file": str(golden_path) if golden_path else "none",
            "by_stratum": strata.to_dict("records"),
        },
        frame_digest(golden),
    )
