"""Group `datasets`: instruction pairs, the golden hold-out, the train/validation SFT dataset."""

from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.datasets.expectations import sft_rows_expectations, sft_rows_for_validation
from llm_assets.datasets.sft import build_sft_pairs
from llm_assets.datasets.splits import shared_pairs, split_golden, split_train_validation
from llm_assets.defs.check_results import preview, to_check_result
from llm_assets.expectations import run_suite
from llm_assets.settings import Profile, section_digest
from llm_assets.storage import frame_digest

DATASETS_CODE_VERSION = "1"
MAX_OUTPUT_CHARS = 20_000


def build_dataset_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    code_version = f"{DATASETS_CODE_VERSION}-{section_digest(profile.datasets)}"
    config = profile.datasets

    @dg.asset(group_name="datasets", code_version=code_version, kinds={"pandas"})
    def sft_pairs(cleaned_corpus: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        """Every instruction/response pair the cleaned corpus yields, in chat `messages` form."""
        pairs = build_sft_pairs(cleaned_corpus, config)
        return dg.Output(
            pairs,
            data_version=dg.DataVersion(frame_digest(pairs)),
            metadata={
                "dagster/row_count": len(pairs),
                "by_task": dg.MetadataValue.json(pairs.groupby("task").size().to_dict()),
                "preview": preview(pairs, ["source", "task", "instruction", "output"]),
            },
        )

    @dg.asset(group_name="datasets", code_version=code_version, kinds={"pandas"})
    def golden_set(sft_pairs: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        """The evaluation hold-out, stratified by source and task; never trained on."""
        golden, _ = split_golden(sft_pairs, config.golden_size, config.seed)
        return dg.Output(
            golden,
            data_version=dg.DataVersion(frame_digest(golden)),
            metadata={
                "dagster/row_count": len(golden),
                "by_stratum": dg.MetadataValue.json(
                    golden.groupby(["source", "task"])
                    .size()
                    .rename("rows")
                    .reset_index()
                    .to_dict("records")
                ),
            },
        )

    @dg.asset(group_name="datasets", code_version=code_version, kinds={"huggingface"})
    def sft_dataset(sft_pairs: pd.DataFrame, golden_set: pd.DataFrame) -> dg.Output[Any]:
        """`datasets.DatasetDict` with `train` and `validation`, golden pairs excluded."""
        from datasets import Dataset, DatasetDict

        remaining = sft_pairs[~sft_pairs["pair_id"].isin(golden_set["pair_id"])]
        train, validation = split_train_validation(remaining, config.validation_ratio, config.seed)
        splits = DatasetDict(
            train=Dataset.from_pandas(train, preserve_index=False),
            validation=Dataset.from_pandas(validation, preserve_index=False),
        )
        return dg.Output(
            splits,
            data_version=dg.DataVersion(
                frame_digest(pd.concat([train.assign(split="train"), validation.assign(split="v")]))
            ),
            metadata={
                "train_rows": len(train),
                "validation_rows": len(validation),
                "dagster/row_count": len(train) + len(validation),
                "preview": preview(train, ["task", "instruction", "output"]),
            },
        )

    def rows_are_well_formed(frame: pd.DataFrame, suite: str) -> dg.AssetCheckResult:
        outcome = run_suite(
            sft_rows_for_validation(frame), suite, sft_rows_expectations(MAX_OUTPUT_CHARS)
        )
        return to_check_result(outcome, rows=len(frame))

    well_formed = "Rows have a prompt, a non-empty bounded answer as the last turn, and no PII."

    @dg.asset_check(asset=sft_pairs, blocking=True, description=well_formed)
    def sft_pairs_rows_are_well_formed(sft_pairs: pd.DataFrame) -> dg.AssetCheckResult:
        return rows_are_well_formed(sft_pairs, "sft_pairs")

    @dg.asset_check(asset=golden_set, blocking=True, description=well_formed)
    def golden_set_rows_are_well_formed(golden_set: pd.DataFrame) -> dg.AssetCheckResult:
        return rows_are_well_formed(golden_set, "golden_set")

    @dg.asset_check(asset=sft_dataset, blocking=True, description=well_formed)
    def sft_dataset_rows_are_well_formed(sft_dataset: Any) -> dg.AssetCheckResult:
        frame = pd.concat(
            [sft_dataset[name].to_pandas() for name in sft_dataset], ignore_index=True
        )
        return rows_are_well_formed(frame, "sft_dataset")

    # On sft_dataset, not golden_set: sft_dataset is built after golden_set, and a blocking check
    # on golden_set that read sft_dataset would make the graph circular.
    @dg.asset_check(
        asset=sft_dataset,
        additional_ins={"golden_set": dg.AssetIn("golden_set")},
        blocking=True,
        description="No golden prompt or answer appears in train or validation.",
    )
    def sft_dataset_excludes_golden_set(
        sft_dataset: Any, golden_set: pd.DataFrame
    ) -> dg.AssetCheckResult:
        training = pd.concat([sft_dataset[name].to_pandas() for name in sft_dataset])
        leaked = shared_pairs(golden_set, training)
        return dg.AssetCheckResult(
            passed=leaked.empty,
            description=f"{len(leaked)} golden pairs also appear in train/validation",
            metadata={
                "leaked_pair_ids": dg.MetadataValue.json(leaked["pair_id"].head(20).tolist())
            },
        )

    return (
        [sft_pairs, golden_set, sft_dataset],
        [
            sft_pairs_rows_are_well_formed,
            golden_set_rows_are_well_formed,
            sft_dataset_rows_are_well_formed,
            sft_dataset_excludes_golden_set,
        ],
    )
