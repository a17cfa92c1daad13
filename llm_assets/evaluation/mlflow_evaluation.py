"""The eval report's answers in MLflow: one table row per golden prompt per model, logged to the
evaluation run, and the evaluation linked to the registered version it judged, as MLflow 3
links them (the version's logged model gets the metrics, the run takes it as an input), so the
model's page in the MLflow UI lists the evaluation beside its metrics."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

TABLE_ARTIFACT = "evaluation/golden_answers.json"
DATASET_NAME = "golden_set"
REQUIRED_COLUMNS = ("pair_id", "model", "prompt", "reference", "answer")
SCORE_COLUMNS = ("rouge_l", "groundedness")
# A logged model's URI, `models:/m-<id>`, as a registry version's source.
_LOGGED_MODEL_URI = re.compile(r"^models:/(m-[^/]+)/?$")


def logged_model_id(version: Any) -> str | None:
    """The id of the logged model (MLflow 3) a registry `version` (a ModelVersion) was
    registered from, or None. Stores that do not keep `model_id` on versions (the SQL store)
    still name the model in the version's source, `models:/m-<id>`."""
    if getattr(version, "model_id", None):
        return str(version.model_id)
    found = _LOGGED_MODEL_URI.match(str(getattr(version, "source", "") or ""))
    return found.group(1) if found else None


def evaluation_table(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` cut to the columns the table shows: pair_id, model, prompt, reference, answer,
    and the scores rouge_l and groundedness where present."""
    missing = [column for column in REQUIRED_COLUMNS if column not in rows.columns]
    if missing:
        raise ValueError(
            f"the evaluation rows lack column(s) {missing} (they have {list(rows.columns)}): "
            f"pass one row per golden prompt per model with {list(REQUIRED_COLUMNS)}"
        )
    columns = [*REQUIRED_COLUMNS, *(c for c in SCORE_COLUMNS if c in rows.columns)]
    table = rows.loc[:, columns].reset_index(drop=True)
    table["pair_id"] = table["pair_id"].astype(str)
    return table


def log_evaluation_table(
    mlflow_module: Any,
    rows: pd.DataFrame,
    *,
    run_id: str,
    metrics: dict[str, float],
    model_uri: str = "",
    model_name: str = "",
    model_version: str | None = None,
    artifact_file: str = TABLE_ARTIFACT,
) -> dict[str, str]:
    """Logs `rows` (one per golden prompt per model: pair_id, model, prompt, reference, answer,
    rouge_l and groundedness where present) as the table `artifact_file` of run `run_id`, and
    links the evaluation to the logged model (MLflow 3) it judged: the one `model_uri` names
    (`models:/m-<id>`, as training logs an adapter), else the one version `model_version` of
    `model_name` was registered from. That model gets `metrics` (with the run and the golden
    set as their dataset), which also records the run as taking the model as an input: an
    evaluation of it. Every registry version made from that logged model shows it.

    Returns what was linked: run_id, table_artifact, model_name, model_version (or ""),
    model_id ("" when none), linked ("logged_model" or "run_only") and, for run_only, why."""
    table = evaluation_table(rows)
    client = mlflow_module.MlflowClient()
    mlflow_module.log_table(table, artifact_file=artifact_file, run_id=run_id)
    linked = {
        "run_id": run_id,
        "table_artifact": artifact_file,
        "model_name": model_name,
        "model_version": str(model_version or ""),
        "model_id": "",
    }
    found = _LOGGED_MODEL_URI.match(model_uri)
    if found:
        model_id: str | None = found.group(1)
    elif not model_version:
        why = "no logged model or registered version was named"
        return {**linked, "linked": "run_only", "reason": why}
    else:
        model_id = logged_model_id(client.get_model_version(model_name, model_version))
        if not model_id:
            return {
                **linked,
                "linked": "run_only",
                "reason": f"version {model_version} of '{model_name}' was not registered from "
                "a logged model (its source is no models:/m-… URI)",
            }
    golden = table.loc[:, ["pair_id", "prompt", "reference"]].drop_duplicates("pair_id")
    dataset = mlflow_module.data.from_pandas(golden, name=DATASET_NAME)
    mlflow_module.log_metrics(
        {name: float(value) for name, value in metrics.items()},
        run_id=run_id,
        model_id=model_id,
        dataset=dataset,
        synchronous=True,
    )
    if model_version:
        client.set_tag(run_id, "evaluated_model_version", f"{model_name}/{model_version}")
    return {**linked, "model_id": str(model_id), "linked": "logged_model"}
