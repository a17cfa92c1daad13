"""Secrets and PII never reach the records people browse: every MLflow param, tag, metric name
and text artifact, and every Dagster event of the session's runs, scanned after a full run."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_assets.cleaning.expectations import RESIDUAL_PII_REGEXES

from .conftest import PLANTED_SECRETS, MaterializedGraph

pytestmark = pytest.mark.slow

TEXT_SUFFIXES = {".json", ".md", ".txt", ".yaml", ".yml", ".html", ".csv", ".jsonl", ".jinja"}
PII = [re.compile(pattern) for pattern in RESIDUAL_PII_REGEXES]


def _secrets(graph: MaterializedGraph) -> dict[str, str]:
    secrets = dict(PLANTED_SECRETS)
    for name, url in (
        ("postgres", graph.services.postgres_url),
        ("mlflow", graph.services.mlflow_uri),
    ):
        if url and "@" in url:  # user:password@host: the password part
            secrets[f"{name} password"] = url.split("@", 1)[0].rsplit(":", 1)[-1]
    return secrets


def _mlflow_texts(graph: MaterializedGraph, download_to: Path) -> Iterator[tuple[str, str]]:
    mlflow = graph.resources["mlflow"].tracking()
    client = mlflow.MlflowClient()
    experiment = mlflow.get_experiment_by_name(graph.resources["mlflow"].experiment_name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert runs, "the session's runs are in MLflow"
    for run in runs:
        where = f"mlflow run {run.info.run_id}"
        yield f"{where} params", repr(run.data.params)
        yield f"{where} tags", repr(run.data.tags)
        yield f"{where} metric names", repr(sorted(run.data.metrics))
        stack = [None]
        while stack:
            for item in client.list_artifacts(run.info.run_id, stack.pop()):
                if item.is_dir:
                    stack.append(item.path)
                elif Path(item.path).suffix in TEXT_SUFFIXES and (item.file_size or 0) < 5e6:
                    local = client.download_artifacts(run.info.run_id, item.path, str(download_to))
                    yield f"{where} artifact {item.path}", Path(local).read_text(errors="replace")
    for version in client.search_model_versions(
        f"name='{graph.profile.use_case.registered_model_name}'"
    ):
        yield f"model version {version.version} tags", repr(version.tags)


def _dagster_texts(graph: MaterializedGraph) -> Iterator[tuple[str, str]]:
    for run in graph.instance.get_runs():
        yield f"dagster run {run.run_id} tags", repr(run.tags)
        for record in graph.instance.get_records_for_run(run.run_id, limit=100_000).records:
            event: Any = record.event_log_entry
            if event.dagster_event is None:
                yield f"dagster run {run.run_id} log", str(event.user_message)
                continue
            data = event.dagster_event.event_specific_data
            metadata = getattr(getattr(data, "materialization", None), "metadata", None) or getattr(
                data, "metadata", None
            )
            if metadata:
                yield f"dagster {event.dagster_event.event_type_value}", repr(dict(metadata))
            yield f"dagster run {run.run_id} message", str(event.dagster_event.message or "")


def test_no_secret_and_no_pii_in_mlflow_or_dagster_records(
    graph: MaterializedGraph, tmp_path: Path
) -> None:
    secrets = _secrets(graph)
    scanned = 0
    leaks = []
    for where, text in [*_mlflow_texts(graph, tmp_path), *_dagster_texts(graph)]:
        scanned += 1
        leaks += [f"{where}: secret {name}" for name, value in secrets.items() if value in text]
        leaks += [f"{where}: PII {m.group(0)!r}" for pattern in PII for m in pattern.finditer(text)]
    assert scanned > 100
    assert leaks == []
