"""The project's own `evaluate` metric modules, one folder each, loaded from disk.

Hub metric scripts cannot be fetched on an air-gapped machine, so ROUGE, BLEU, chrF and exact
match are written here on `rouge_score` and `sacrebleu`. Each folder works with plain
`evaluate.load(<folder>)`; `load_metric` does the same but copies the module code into a cache
folder the caller chooses, rather than `~/.cache/huggingface/modules`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

METRICS_DIR = Path(__file__).resolve().parent
METRIC_NAMES = ("rouge", "bleu", "chrf", "exact_match")


def metric_path(name: str) -> Path:
    """The folder of metric `name` (one of METRIC_NAMES), as `evaluate.load` takes it."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; the project ships {', '.join(METRIC_NAMES)}")
    return METRICS_DIR / name


def load_metric(name: str, cache_dir: Path) -> Any:
    """Metric `name` as an `evaluate.EvaluationModule`, its code copied under
    `cache_dir/modules` and its (in-memory) data kept out of the home folder.

    This is `evaluate.load` with the one argument it does not pass through: where module code is
    copied. The importable package is named after `cache_dir`, so two caches in one process
    (tests, two state folders) never shadow each other.
    """
    from evaluate.loading import (
        evaluation_module_factory,
        import_main_class,
        init_dynamic_modules,
    )

    cache_dir = Path(cache_dir).resolve()
    package = "llm_assets_metrics_" + hashlib.sha256(str(cache_dir).encode()).hexdigest()[:10]
    modules = init_dynamic_modules(name=package, hf_modules_cache=cache_dir / "modules")
    module = evaluation_module_factory(str(metric_path(name)), dynamic_modules_path=modules)
    metric_class = import_main_class(module.module_path)
    metric = metric_class(cache_dir=str(cache_dir / "data"), keep_in_memory=True, hash=module.hash)
    metric.download_and_prepare()
    return metric
