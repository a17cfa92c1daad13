"""Group `sources`: one `raw_<name>` asset per configured source."""

import dagster as dg

from llm_assets.cleaning.expectations import raw_records_expectations
from llm_assets.code_versions import AssetSettings, Undeclared
from llm_assets.defs.check_results import preview, to_check_result
from llm_assets.expectations import run_suite
from llm_assets.settings import Profile, SourceConfig, state_dir
from llm_assets.sources import source_batches
from llm_assets.sources.records import raw_schema, records_to_frame
from llm_assets.storage import StoredTable, TableWriter


def raw_asset_name(source: SourceConfig) -> str:
    return f"raw_{source.name}"


def _build_raw_asset(profile: Profile, source: SourceConfig) -> dg.AssetsDefinition:
    settings = AssetSettings(
        profile,
        raw_asset_name(source),
        reads=[f"sources.{source.name}"],
        runtime=["cleaning.batch_size"],
        code=["sources", "defs/sources.py"],
    )

    @dg.asset(
        name=raw_asset_name(source),
        group_name="sources",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pandas", source.kind},
        # As the profile writes it: the description must not change with where the checkout is.
        description=f"Every record of source '{source.name}' "
        f"({source.kind}: {source.path or source.redacted_url}), "
        "readable or not; unreadable ones carry `read_error`.",
    )
    def raw_records(context: dg.AssetExecutionContext) -> dg.Output[StoredTable]:
        profile = settings.profile
        (source,) = (s for s in profile.sources if not isinstance(s, Undeclared))
        # Written batch by batch: a source far larger than memory reads in flat memory.
        scratch = state_dir() / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        path = scratch / f"{raw_asset_name(source)}-{context.run.run_id}.parquet"
        writer = TableWriter(path, raw_schema())
        unreadable = 0
        first = records_to_frame([])
        try:
            for batch in source_batches(profile, source, profile.cleaning.batch_size):
                errors = batch["error_detail"][batch["read_error"].notna()]
                for detail in errors.head(max(0, 20 - unreadable)):
                    context.log.warning(f"quarantined: {detail}")
                unreadable += len(errors)
                first = batch if first.empty else first
                writer.write(batch)
        except BaseException:
            writer.close()
            path.unlink(missing_ok=True)
            raise
        table = writer.close()
        return dg.Output(
            table,
            data_version=dg.DataVersion(table.digest),
            metadata={
                "dagster/row_count": table.rows,
                "records": table.rows,
                "unreadable": unreadable,
                "path": profile.source_glob(source),
                # No text in the preview: raw records still hold PII, and metadata is kept forever.
                "preview": preview(
                    first.assign(chars=first["text"].str.len()),
                    ["record_id", "uri", "chars", "read_error"],
                ),
            },
        )

    return raw_records


def _build_raw_check(source: SourceConfig) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=raw_asset_name(source),
        name=f"{raw_asset_name(source)}_has_unique_record_ids",
        blocking=True,
        description="The source yielded records, each with a unique record_id.",
    )
    def has_unique_record_ids(raw: StoredTable) -> dg.AssetCheckResult:
        ids = raw.read(columns=["record_id", "source"])  # not the texts: flat memory
        return to_check_result(
            run_suite(ids, f"raw_{source.name}", raw_records_expectations(source.name))
        )

    return has_unique_record_ids


def build_source_defs(
    profile: Profile,
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    assets = [_build_raw_asset(profile, source) for source in profile.sources]
    checks = [_build_raw_check(source) for source in profile.sources]
    return assets, checks
