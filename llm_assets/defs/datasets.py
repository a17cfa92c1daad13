"""Group `datasets`: instruction pairs, the golden hold-out, the train/validation SFT dataset with
its ledger, exported files and the chat template training must use."""

import hashlib
import json
from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.datasets.expectations import sft_rows_expectations, sft_rows_for_validation
from llm_assets.datasets.golden_file import combine_golden, golden_file_digest, read_golden_file
from llm_assets.datasets.leaks import find_leaks
from llm_assets.datasets.ledger import dataset_ledger_discrepancies
from llm_assets.datasets.sft import build_sft_pairs
from llm_assets.datasets.splits import split_golden
from llm_assets.defs.check_results import preview, to_check_result
from llm_assets.defs.dataset_splits import build_sft_dataset_asset, build_template_check
from llm_assets.defs.resources import ArtifactStoreResource
from llm_assets.expectations import run_suite
from llm_assets.settings import Profile
from llm_assets.storage import frame_digest

MAX_OUTPUT_CHARS = 20_000


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def build_dataset_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    config = profile.datasets
    code = ["datasets", "defs/datasets.py", "defs/dataset_splits.py"]
    # Each asset re-runs only for the settings it reads: a new golden size calls no teacher.
    pairs_settings = AssetSettings(
        profile,
        "sft_pairs",
        reads=["datasets.system_prompt", "datasets.templates", "datasets.teacher"],
        runtime=["datasets.teacher.timeout_s", "datasets.teacher.api_key_env"],
        code=code,
    )
    golden_path = profile.golden_path()
    golden_settings = AssetSettings(
        profile,
        "golden_set",
        reads=[
            f"datasets.{name}"
            for name in (
                "golden_file",
                "golden_size",
                "seed",
                "leak_threshold",
                "golden_file_mode",
                "system_prompt",
            )
        ],
        code=code,
        extra=golden_file_digest(golden_path),
    )
    dataset_settings = AssetSettings(
        profile,
        "sft_dataset",
        reads=[
            "datasets",
            "redteam.canaries",
            "redteam.canary_copies",
            "cleaning.quality.languages",
        ],
        code=code,
    )

    @dg.asset(
        group_name="datasets",
        code_version=pairs_settings.code_version,
        metadata=pairs_settings.metadata(),
        kinds={"pandas"},
    )
    def sft_pairs(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        cleaned_corpus: pd.DataFrame,
    ) -> dg.Output[pd.DataFrame]:
        """Every instruction/response pair the cleaned corpus yields, in chat `messages` form:
        instruction records directly, chats as multi-turn pairs, answered records through their
        answer template, documents through section templates (and a teacher, if configured)."""
        from llm_assets.datasets.teacher import TeacherClient

        config = pairs_settings.profile.datasets
        teacher = None
        if config.teacher.enabled:
            cache = artifacts.work_dir(
                "teacher_cache", _digest([config.teacher.url, config.teacher.model])
            )
            teacher = TeacherClient.from_config(config.teacher, cache_dir=cache)
        built = build_sft_pairs(cleaned_corpus, config, teacher)
        pairs = built.pairs
        metadata: dict[str, Any] = {
            "dagster/row_count": len(pairs),
            "by_task": dg.MetadataValue.json(pairs.groupby("task").size().to_dict()),
            "records_without_pairs": dg.MetadataValue.json(
                built.skipped.groupby("reason").size().to_dict()
            ),
            "preview": preview(pairs, ["source", "task", "instruction", "output"]),
        }
        if built.teacher is not None and teacher is not None:
            metadata |= {
                "teacher_pairs": built.teacher.pairs,
                "teacher_sections_sent": built.teacher.sections_sent,
                "teacher_sections_over_budget": built.teacher.sections_over_budget,
                "teacher_requests": teacher.requests_sent,
                "teacher_cache_hits": teacher.cache_hits,
                "teacher_failures": dg.MetadataValue.json(built.teacher.failures[:20]),
            }
            for failure in built.teacher.failures[:5]:
                context.log.warning(failure)
        return dg.Output(pairs, data_version=dg.DataVersion(frame_digest(pairs)), metadata=metadata)

    @dg.asset(
        group_name="datasets",
        code_version=golden_settings.code_version,
        metadata=golden_settings.metadata(),
        kinds={"pandas"},
    )
    def golden_set(sft_pairs: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        """The evaluation hold-out: sampled pairs stratified by source and task, whole leak
        groups at a time, and the rows of `datasets.golden_file` if one is set; never trained
        on."""
        profile = golden_settings.profile
        config = profile.datasets
        golden_path = profile.golden_path()
        from_file = read_golden_file(golden_path, config.system_prompt) if golden_path else None
        sampled, _ = (
            split_golden(sft_pairs, config.golden_size, config.seed, config.leak_threshold)
            if from_file is None or config.golden_file_mode == "extend"
            else (sft_pairs.iloc[0:0], sft_pairs)
        )
        golden = combine_golden(sampled, from_file, config.golden_file_mode)
        return dg.Output(
            golden,
            data_version=dg.DataVersion(frame_digest(golden)),
            metadata={
                "dagster/row_count": len(golden),
                "sampled_rows": len(sampled),
                "golden_file_rows": 0 if from_file is None else len(from_file),
                "golden_file": str(golden_path) if golden_path else "none",
                "by_stratum": dg.MetadataValue.json(
                    golden.groupby(["source", "task"])
                    .size()
                    .rename("rows")
                    .reset_index()
                    .to_dict("records")
                ),
            },
        )

    sft_dataset_splits = build_sft_dataset_asset(dataset_settings)

    def rows_are_well_formed(
        frame: pd.DataFrame, suite: str, max_tokens: int | None = None
    ) -> dg.AssetCheckResult:
        outcome = run_suite(
            sft_rows_for_validation(frame),
            suite,
            sft_rows_expectations(MAX_OUTPUT_CHARS, max_tokens),
        )
        return to_check_result(outcome, rows=len(frame))

    well_formed = (
        "Rows have a prompt, a non-empty bounded answer as the last turn, and no PII patterns."
    )

    @dg.asset_check(asset=sft_pairs, blocking=True, description=well_formed)
    def sft_pairs_rows_are_well_formed(sft_pairs: pd.DataFrame) -> dg.AssetCheckResult:
        return rows_are_well_formed(sft_pairs, "sft_pairs")

    @dg.asset_check(asset=golden_set, blocking=True, description=well_formed)
    def golden_set_rows_are_well_formed(golden_set: pd.DataFrame) -> dg.AssetCheckResult:
        return rows_are_well_formed(golden_set, "golden_set")

    @dg.asset_check(
        asset="sft_dataset",
        blocking=True,
        description=f"{well_formed} Every row within datasets.max_length tokens.",
    )
    def sft_dataset_rows_are_well_formed(sft_dataset: Any) -> dg.AssetCheckResult:
        frame = pd.concat(
            [sft_dataset[name].to_pandas() for name in sft_dataset], ignore_index=True
        )
        return rows_are_well_formed(frame, "sft_dataset", config.max_length)

    # On sft_dataset, not golden_set: sft_dataset is built after golden_set, and a blocking check
    # on golden_set that read sft_dataset would make the graph circular.
    @dg.asset_check(
        asset="sft_dataset",
        additional_ins={"golden_set": dg.AssetIn("golden_set")},
        blocking=True,
        description="No golden prompt or answer appears in train or validation, exactly or as a "
        f"near duplicate (estimated Jaccard >= {config.leak_threshold}).",
    )
    def sft_dataset_excludes_golden_set(
        sft_dataset: Any, golden_set: pd.DataFrame
    ) -> dg.AssetCheckResult:
        training = pd.concat(
            [sft_dataset[name].to_pandas() for name in sft_dataset], ignore_index=True
        )
        leaked = find_leaks(golden_set, training, config.leak_threshold)
        return dg.AssetCheckResult(
            passed=leaked.empty,
            description=f"{len(leaked)} train/validation pairs match a golden pair",
            metadata={
                "leaks": dg.MetadataValue.json(
                    leaked[["pair_id", "leaked_with", "match", "similarity"]]
                    .head(20)
                    .to_dict("records")
                ),
                "by_match": dg.MetadataValue.json(leaked.groupby("match").size().to_dict()),
            },
        )

    @dg.asset_check(
        asset="dataset_ledger",
        additional_ins={
            name: dg.AssetIn(name)
            for name in ("cleaned_corpus", "sft_pairs", "golden_set", "sft_dataset")
        },
        blocking=True,
        description="Every cleaned record and every pair has one ledger row, and the kept and "
        "held-out rows are exactly what sft_dataset and golden_set store.",
    )
    def dataset_ledger_accounts_for_every_pair(
        dataset_ledger: pd.DataFrame,
        cleaned_corpus: pd.DataFrame,
        sft_pairs: pd.DataFrame,
        golden_set: pd.DataFrame,
        sft_dataset: Any,
    ) -> dg.AssetCheckResult:
        problems = dataset_ledger_discrepancies(
            dataset_ledger,
            cleaned_corpus,
            sft_pairs,
            golden_set,
            {name: len(sft_dataset[name]) for name in sft_dataset},
        )
        return dg.AssetCheckResult(
            passed=not problems,
            description="; ".join(problems) or f"{len(dataset_ledger)} rows account for all",
            metadata={"problems": dg.MetadataValue.json(problems)},
        )

    return (
        [sft_pairs, golden_set, sft_dataset_splits],
        [
            sft_pairs_rows_are_well_formed,
            golden_set_rows_are_well_formed,
            sft_dataset_rows_are_well_formed,
            sft_dataset_excludes_golden_set,
            dataset_ledger_accounts_for_every_pair,
            build_template_check(),
        ],
    )
