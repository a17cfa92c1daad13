"""The `cleaning` multi-asset: the cleaned corpus, its ledger and the near-duplicate index."""

import hashlib
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.cleaning.cleaned_corpus import (
    forget_requests,
    previous_near_duplicate_index,
    run_cleaning,
    store_near_duplicate_index,
)
from llm_assets.code_versions import AssetSettings
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import READ_PARTITIONS, ArtifactStoreResource, MlflowResource
from llm_assets.defs.sources import raw_asset_name
from llm_assets.settings import Profile, state_dir
from llm_assets.storage import StoredTable


def cleaning_settings(profile: Profile) -> AssetSettings[Profile]:
    """Cleaning reads its section and each source's kind; its version also holds the forget
    file's content: a new deletion request re-runs cleaning and, through data versions,
    everything derived from the forgotten records."""
    forget = sorted(forget_requests(profile.forget_path()))
    return AssetSettings(
        profile,
        "cleaning",
        reads=["cleaning", *(f"sources.{source.name}.kind" for source in profile.sources)],
        runtime=["cleaning.batch_size", "cleaning.workers"],
        code=["cleaning", "defs/cleaning"],
        extra=hashlib.sha256("\n".join(forget).encode()).hexdigest() if forget else None,
    )


# Output name -> (kind, description).
OUTPUTS = {
    "cleaned_corpus": ("pandas", "Records that passed every cleaning stage, PII redacted."),
    "cleaning_ledger": (
        "pandas",
        "One row per input record: kept, dropped or quarantined, and why.",
    ),
    "near_duplicate_index": (
        "numpy",
        "MinHash signatures of the kept records. The next run starts from "
        "it: re-read records are not hashed again, new ones are compared against it.",
    ),
}


def cleaning_asset(profile: Profile) -> dg.AssetsDefinition:
    raw_names = [raw_asset_name(source) for source in profile.sources]
    settings = cleaning_settings(profile)

    @dg.multi_asset(
        name="cleaning",
        group_name="cleaning",
        ins={
            **{name: dg.AssetIn(key=name, dagster_type=StoredTable) for name in raw_names},
            # Every quarter of curated feedback so far, read like one more source.
            "feedback_records": dg.AssetIn(
                partition_mapping=dg.AllPartitionMapping(), metadata={READ_PARTITIONS: "all"}
            ),
        },
        outs={
            name: dg.AssetOut(
                code_version=settings.code_version,
                metadata=settings.metadata(),
                kinds={kind},
                description=description,
            )
            for name, (kind, description) in OUTPUTS.items()
        },
    )
    def cleaning(
        context: dg.AssetExecutionContext,
        mlflow: MlflowResource,
        artifacts: ArtifactStoreResource,
        **raw_tables: StoredTable,
    ) -> Any:
        near = settings.profile.cleaning.near_dedup
        previous = previous_near_duplicate_index(
            _latest_index_path(context.instance), near, context.log.info, context.log.warning
        )
        feedback: dict[str, pd.DataFrame] = raw_tables.pop("feedback_records", {})  # type: ignore[assignment]
        run_id = context.run.run_id
        run = run_cleaning(
            settings.profile,
            [raw_tables[name] for name in raw_names],
            list(feedback.values()),
            previous,
            scratch=state_dir() / "tmp",
            run_id=run_id,
            start_mlflow_run=partial(mlflow.start_run, context),
            mlflow_run_url=mlflow.run_url,
        )
        yield stage_output(run.cleaned_corpus, output_name="cleaned_corpus")
        yield stage_output(run.cleaning_ledger, output_name="cleaning_ledger")
        index = store_near_duplicate_index(
            run.near_duplicate_index, near, previous is not None, artifacts, run_id
        )
        yield stage_output(index, output_name="near_duplicate_index")

    return cleaning


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> Mapping[str, Any] | None:
    """What the latest materialization of `asset` recorded; None if it was never materialized."""
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    materialization = event.asset_materialization if event else None
    return materialization.metadata if materialization is not None else None


def _latest_index_path(instance: dg.DagsterInstance) -> Path | None:
    """Where the last run saved its near-duplicate index, as it recorded it."""
    metadata = latest_metadata(instance, "near_duplicate_index")
    if metadata is None or "path" not in metadata:
        return None
    return Path(str(metadata["path"].value))
