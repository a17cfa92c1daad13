"""Group `sources`: one `raw_<name>` asset per configured source."""

import dagster as dg
import pandas as pd

from llm_assets.cleaning.expectations import raw_records_expectations
from llm_assets.defs.check_results import preview, to_check_result
from llm_assets.expectations import run_suite
from llm_assets.settings import Profile, SourceConfig, section_digest
from llm_assets.sources import read_source
from llm_assets.storage import frame_digest

READER_CODE_VERSION = "1"


def raw_asset_name(source: SourceConfig) -> str:
    return f"raw_{source.name}"


def _build_raw_asset(profile: Profile, source: SourceConfig) -> dg.AssetsDefinition:
    @dg.asset(
        name=raw_asset_name(source),
        group_name="sources",
        code_version=f"{READER_CODE_VERSION}-{section_digest(source)}",
        kinds={"pandas", source.kind},
        description=f"Every record of source '{source.name}' "
        f"({source.kind}: {profile.source_glob(source)}), "
        "readable or not; unreadable ones carry `read_error`.",
    )
    def raw_records(context: dg.AssetExecutionContext) -> dg.Output[pd.DataFrame]:
        records = read_source(profile, source)
        unreadable = records[records["read_error"].notna()]
        for detail in unreadable["error_detail"].head(20):
            context.log.warning(f"quarantined: {detail}")
        return dg.Output(
            records,
            data_version=dg.DataVersion(frame_digest(records)),
            metadata={
                "dagster/row_count": len(records),
                "records": len(records),
                "unreadable": len(unreadable),
                "path": profile.source_glob(source),
                # No text in the preview: raw records still hold PII, and metadata is kept forever.
                "preview": preview(
                    records.assign(chars=records["text"].str.len()),
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
    def has_unique_record_ids(raw: pd.DataFrame) -> dg.AssetCheckResult:
        return to_check_result(
            run_suite(raw, f"raw_{source.name}", raw_records_expectations(source.name))
        )

    return has_unique_record_ids


def build_source_defs(
    profile: Profile,
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    assets = [_build_raw_asset(profile, source) for source in profile.sources]
    checks = [_build_raw_check(source) for source in profile.sources]
    return assets, checks
