"""Group `cleaning`: the cleaned corpus and the ledger that accounts for every input record."""

import hashlib
import os
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.cleaning.chain import (
    clean_stream,
    corpus_schema,
    ledger_schema,
    read_forget_requests,
    stored_table_batches,
)
from llm_assets.cleaning.dedup import NearDuplicateIndex
from llm_assets.cleaning.expectations import (
    cleaned_corpus_expectations,
    ledger_expectations,
    no_pii_expectations,
)
from llm_assets.cleaning.ledger import ACTIONS, ledger_discrepancies
from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import NearDuplicateIndexFile
from llm_assets.defs.check_results import preview, to_check_result
from llm_assets.defs.resources import READ_PARTITIONS, ArtifactStoreResource, MlflowResource
from llm_assets.defs.sources import raw_asset_name
from llm_assets.expectations import run_suite
from llm_assets.settings import Profile, state_dir
from llm_assets.sources.feedback import FEEDBACK_SOURCE
from llm_assets.storage import StoredTable, TableWriter


def _forget_requests(profile: Profile) -> set[str]:
    path = profile.forget_path()
    if path is None:
        return set()
    if not path.is_file():
        raise FileNotFoundError(f"cleaning.forget_file: {path} does not exist")
    return read_forget_requests(path.read_text(encoding="utf-8").splitlines())


def cleaning_settings(profile: Profile) -> AssetSettings[Profile]:
    """Cleaning reads its section and each source's kind; its version also holds the forget
    file's content: a new deletion request re-runs cleaning and, through data versions,
    everything derived from the forgotten records."""
    forget = sorted(_forget_requests(profile))
    return AssetSettings(
        profile,
        "cleaning",
        reads=["cleaning", *(f"sources.{source.name}.kind" for source in profile.sources)],
        runtime=["cleaning.batch_size", "cleaning.workers"],
        code=["cleaning", "defs/cleaning.py"],
        extra=hashlib.sha256("\n".join(forget).encode()).hexdigest() if forget else None,
    )


def _build_cleaning_asset(profile: Profile) -> dg.AssetsDefinition:
    raw_names = [raw_asset_name(source) for source in profile.sources]
    settings = cleaning_settings(profile)
    code_version = settings.code_version

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
            "cleaned_corpus": dg.AssetOut(
                code_version=code_version,
                metadata=settings.metadata(),
                kinds={"pandas"},
                description="Records that passed every cleaning stage, PII redacted.",
            ),
            "cleaning_ledger": dg.AssetOut(
                code_version=code_version,
                metadata=settings.metadata(),
                kinds={"pandas"},
                description="One row per input record: kept, dropped or quarantined, and why.",
            ),
            "near_duplicate_index": dg.AssetOut(
                code_version=code_version,
                metadata=settings.metadata(),
                kinds={"numpy"},
                description="MinHash signatures of the kept records. The next run starts from "
                "it: re-read records are not hashed again, new ones are compared against it.",
            ),
        },
    )
    def cleaning(
        context: dg.AssetExecutionContext,
        mlflow: MlflowResource,
        artifacts: ArtifactStoreResource,
        **raw_tables: StoredTable,
    ) -> Any:
        import mlflow as mlflow_client

        profile = settings.profile
        config = profile.cleaning
        tables = [raw_tables[name] for name in raw_names]
        feedback_quarters: dict[str, pd.DataFrame] = raw_tables.pop("feedback_records", {})  # type: ignore[assignment]
        feedback_rows = sum(len(frame) for frame in feedback_quarters.values())
        previous_index = _previous_near_duplicate_index(context, profile)
        scratch = state_dir() / "tmp"
        run_id = context.run.run_id
        corpus = TableWriter(scratch / f"cleaned_corpus-{run_id}.parquet", corpus_schema())
        ledger = TableWriter(scratch / f"cleaning_ledger-{run_id}.parquet", ledger_schema())
        try:
            result = clean_stream(
                lambda: stored_table_batches(
                    tables, config.batch_size, list(feedback_quarters.values())
                ),
                config,
                corpus.write,
                ledger.write,
                forget=_forget_requests(profile),
                near_duplicate_index=previous_index,
                code_sources={source.name for source in profile.sources if source.kind == "git"},
                documents_sources={
                    source.name for source in profile.sources if source.kind == "documents"
                },
                workers=_workers(
                    config.workers, sum(t.rows for t in tables) + feedback_rows, config.batch_size
                ),
                spill_dir=scratch,
            )
        except BaseException:
            for writer in (corpus, ledger):
                writer.close().path.unlink(missing_ok=True)
            raise
        corpus_table, ledger_table = corpus.close(), ledger.close()
        outcomes = pd.DataFrame(
            [
                {"action": action, "reason": reason, "records": count}
                for (action, reason), count in result.outcomes.items()
            ],
            columns=["action", "reason", "records"],
        ).sort_values(["action", "records"], ascending=[True, False])
        actions = outcomes.groupby("action")["records"].sum()
        stages = pd.DataFrame(result.stage_counts)
        with mlflow.start_run(context, f"cleaning-{run_id[:8]}") as run:
            mlflow_client.log_params(
                {f"cleaning.{k}": v for k, v in config.model_dump(mode="json").items()}
            )
            mlflow_client.log_metrics(
                {
                    **{
                        f"stage.{row['stage']}.removed": row["removed"]
                        for row in result.stage_counts
                    },
                    **{f"rewrite.{step}": count for step, count in result.rewrites.items()},
                    **{f"pii.{entity}": count for entity, count in result.pii_counts.items()},
                    "records.raw": result.raw_records,
                    "records.kept": corpus_table.rows,
                }
            )
            run_url = mlflow.run_url(run)
        yield dg.Output(
            corpus_table,
            output_name="cleaned_corpus",
            data_version=dg.DataVersion(corpus_table.digest),
            metadata={
                "dagster/row_count": corpus_table.rows,
                "by_source": dg.MetadataValue.json(dict(result.kept_by_source)),
                "pii_redacted": dg.MetadataValue.json(dict(result.pii_counts)),
                "stages": dg.MetadataValue.md(stages.to_markdown(index=False)),
                "texts_rewritten": dg.MetadataValue.json(result.rewrites),
                "mlflow_run": dg.MetadataValue.url(run_url),
                "preview": preview(result.preview, ["source", "record_id", "text", "response"]),
            },
        )
        yield dg.Output(
            ledger_table,
            output_name="cleaning_ledger",
            data_version=dg.DataVersion(ledger_table.digest),
            metadata={
                "dagster/row_count": ledger_table.rows,
                "outcomes": dg.MetadataValue.md(outcomes.to_markdown(index=False)),
                **{action: int(actions.get(action, 0)) for action in ACTIONS},
            },
        )
        index = result.near_duplicate_index
        with artifacts.new_folder("near_duplicate_index", context.run.run_id) as folder:
            if index is not None:
                index.save(folder / "index.npz")
        path = artifacts.folder("near_duplicate_index", context.run.run_id) / "index.npz"
        yield dg.Output(
            NearDuplicateIndexFile(
                path=str(path) if index is not None else None,
                records=len(index) if index is not None else 0,
                settings=profile.cleaning.near_dedup.model_dump(mode="json"),
                reused_from_run=previous_index is not None,
            ),
            output_name="near_duplicate_index",
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "records": len(index) if index is not None else 0,
                "started_from_previous": previous_index is not None,
            },
        )

    return cleaning


def _workers(configured: int | None, rows: int, batch_size: int) -> int:
    """Worker processes for the per-record stages: every core by default, but no more than
    there are batches (starting a worker costs seconds; a small corpus is one batch)."""
    return max(1, min(configured or os.cpu_count() or 1, -(-rows // batch_size)))


def _previous_near_duplicate_index(
    context: dg.AssetExecutionContext, profile: Profile
) -> NearDuplicateIndex | None:
    """The index the last run saved, if it was built with the same settings."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey("near_duplicate_index"))
    materialization = event.asset_materialization if event else None
    if materialization is None or "path" not in materialization.metadata:
        return None
    path = Path(str(materialization.metadata["path"].value))
    if not path.is_file():
        context.log.warning(f"previous near-duplicate index {path} is gone; starting a new one")
        return None
    index = NearDuplicateIndex.load(path)
    near = profile.cleaning.near_dedup
    if (index.threshold, index.num_perm, index.shingle_size) != (
        near.threshold,
        near.num_perm,
        near.shingle_size,
    ):
        context.log.info("near-duplicate settings changed; building a new index")
        return None
    return index


def _feedback_record_counts(instance: dg.DagsterInstance) -> dict[str, int]:
    """Records per materialized quarter of `feedback_records`, as each recorded them."""
    key = dg.AssetKey("feedback_records")
    counts = {}
    for partition in sorted(instance.get_materialized_partitions(key)):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        materialization = records[0].asset_materialization if records else None
        if materialization is not None:
            counts[partition] = int(materialization.metadata["records"].value)  # type: ignore[arg-type]
    return counts


def _build_ledger_check(profile: Profile) -> dg.AssetChecksDefinition:
    raw_names = [raw_asset_name(source) for source in profile.sources]

    @dg.asset_check(
        asset="cleaning_ledger",
        additional_deps=raw_names,
        blocking=True,
        description="Raw totals equal kept + dropped + quarantined, per source, one row each.",
    )
    def cleaning_ledger_accounts_for_every_record(
        context: dg.AssetCheckExecutionContext, cleaning_ledger: pd.DataFrame
    ) -> dg.AssetCheckResult:
        # Counts come from what each raw asset recorded, not from the cleaning step itself.
        raw_counts = {}
        for source, name in zip(profile.sources, raw_names, strict=True):
            event = context.instance.get_latest_materialization_event(dg.AssetKey(name))
            materialization = event.asset_materialization if event else None
            if materialization is None:
                return dg.AssetCheckResult(passed=False, description=f"{name} is not materialized")
            raw_counts[source.name] = int(materialization.metadata["records"].value)  # type: ignore[arg-type]
        feedback = _feedback_record_counts(context.instance)
        if feedback:
            raw_counts[FEEDBACK_SOURCE] = sum(feedback.values())
        problems = ledger_discrepancies(raw_counts, cleaning_ledger)
        outcome = run_suite(cleaning_ledger, "cleaning_ledger", ledger_expectations())
        passed = outcome.passed and not problems
        return dg.AssetCheckResult(
            passed=passed,
            description="\n".join(problems) or outcome.summary(),
            metadata={
                "raw_records": sum(raw_counts.values()),
                "ledger_rows": len(cleaning_ledger),
                "discrepancies": dg.MetadataValue.json(problems),
                "expectations_failed": len(outcome.failures),
            },
        )

    return cleaning_ledger_accounts_for_every_record


@dg.asset_check(
    asset="cleaned_corpus", blocking=True, description="No identifier survived redaction."
)
def cleaned_corpus_has_no_pii(cleaned_corpus: pd.DataFrame) -> dg.AssetCheckResult:
    return to_check_result(run_suite(cleaned_corpus, "cleaned_corpus_pii", no_pii_expectations()))


def _build_well_formed_check(profile: Profile) -> dg.AssetChecksDefinition:
    max_chars = max(source.max_record_chars for source in profile.sources)

    @dg.asset_check(
        asset="cleaned_corpus",
        blocking=True,
        description="Unique non-null ids, texts within length bounds, no exact duplicates left.",
    )
    def cleaned_corpus_is_well_formed(cleaned_corpus: pd.DataFrame) -> dg.AssetCheckResult:
        expectations = cleaned_corpus_expectations(profile.cleaning.min_chars, max_chars)
        return to_check_result(run_suite(cleaned_corpus, "cleaned_corpus", expectations))

    return cleaned_corpus_is_well_formed


def build_cleaning_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    return (
        [_build_cleaning_asset(profile)],
        [
            _build_ledger_check(profile),
            cleaned_corpus_has_no_pii,
            _build_well_formed_check(profile),
        ],
    )
