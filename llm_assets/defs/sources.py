"""Group `sources`: one `raw_<name>` asset per configured source."""

import dagster as dg

from llm_assets.cleaning.expectations import raw_records_expectations
from llm_assets.code_versions import AssetSettings, Undeclared
from llm_assets.defs.check_results import to_check_result
from llm_assets.defs.location import stage_definitions
from llm_assets.defs.metadata import stage_output
from llm_assets.expectations import run_suite
from llm_assets.settings import Profile, SourceConfig, state_dir
from llm_assets.sources.raw_table import raw_asset_name, run_raw_records
from llm_assets.storage import StoredTable

__all__ = ["build_source_defs", "raw_asset_name"]


def raw_asset(profile: Profile, source: SourceConfig) -> dg.AssetsDefinition:
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
        run = run_raw_records(
            profile, source, state_dir() / "tmp", context.run.run_id, context.log.warning
        )
        return stage_output(run)

    return raw_records


def unique_record_ids_check(source: SourceConfig) -> dg.AssetChecksDefinition:
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
    assets = [raw_asset(profile, source) for source in profile.sources]
    checks = [unique_record_ids_check(source) for source in profile.sources]
    return assets, checks


@dg.definitions
def sources_definitions() -> dg.Definitions:
    return stage_definitions(build_source_defs)
