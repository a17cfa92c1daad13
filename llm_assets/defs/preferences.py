"""Group `feedback`, preference side: each quarter's judged answers as KTO rows and DPO pairs,
with a ledger row for every answer."""

from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.defs.check_results import preview
from llm_assets.defs.feedback import quarters
from llm_assets.defs.resources import FeedbackStoreResource
from llm_assets.settings import Profile
from llm_assets.storage import frame_digest


def build_preference_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    settings = AssetSettings(
        profile,
        "preference_dataset",
        reads=[
            "feedback.min_rating_kept",
            "datasets.system_prompt",
            "datasets.templates.conversation",
            "cleaning.redact_pii",
            "cleaning.pii_entities",
            "cleaning.pii_allow_list",
        ],
        code=["datasets/preferences.py", "sources/feedback.py", "defs/preferences.py"],
    )

    @dg.multi_asset(
        name="preferences",
        group_name="feedback",
        partitions_def=quarters(profile.feedback),
        outs={
            "preference_dataset": dg.AssetOut(
                code_version=settings.code_version,
                metadata=settings.metadata(),
                kinds={"huggingface"},
                description="The quarter's judged answers as preference data: `kto` rows "
                "(prompt, completion, label: liked or corrected True, disliked or replaced by "
                "a correction False) and `dpo` pairs (prompt, chosen, rejected: a correction "
                "over the served answer, or a liked over a disliked answer to the same "
                "question), the prompt rendered as SFT renders it.",
            ),
            "preference_ledger": dg.AssetOut(
                code_version=settings.code_version,
                metadata=settings.metadata(),
                kinds={"pandas"},
                description="One row per answer judged in the quarter: the rows and pairs it "
                "became, or the `preference.*` reason it became none.",
            ),
        },
    )
    def preferences(
        context: dg.AssetExecutionContext, feedback_store: FeedbackStoreResource
    ) -> Any:
        from datasets import Dataset, DatasetDict

        from llm_assets.cleaning.pii import redact_pii_batch
        from llm_assets.datasets.preferences import preference_data
        from llm_assets.serving.store import read_feedback
        from llm_assets.sources.feedback import latest_per_response

        profile = settings.profile
        cleaning = profile.cleaning
        window = context.partition_time_window
        exchanges = latest_per_response(
            read_feedback(feedback_store.engine(), window.start, window.end)
        )

        def redact(texts: list[str]) -> list[str]:
            found = redact_pii_batch(texts, cleaning.pii_entities, allow=cleaning.pii_allow_list)
            return [text for text, _ in found]

        data = preference_data(
            exchanges,
            profile.feedback.min_rating_kept,
            context.partition_key,
            profile.datasets.templates.conversation,
            profile.datasets.system_prompt,
            redact if cleaning.redact_pii else None,
        )
        dataset = DatasetDict(
            kto=Dataset.from_pandas(data.unpaired, preserve_index=False),
            dpo=Dataset.from_pandas(data.paired, preserve_index=False),
        )
        reasons = data.ledger["reason"].value_counts().rename_axis("reason").reset_index()
        yield dg.Output(
            dataset,
            output_name="preference_dataset",
            data_version=dg.DataVersion(
                frame_digest(
                    pd.concat([data.unpaired.astype(str), data.paired.astype(str)], axis=0)
                )
            ),
            metadata={
                "kto_rows": len(data.unpaired),
                "kto_positive": int(data.unpaired["label"].sum()),
                "dpo_pairs": len(data.paired),
                "pairs_by_why": dg.MetadataValue.json(data.paired.groupby("why").size().to_dict()),
                "quarter": f"{window.start:%Y-%m-%d} to {window.end:%Y-%m-%d}",
            },
        )
        yield dg.Output(
            data.ledger,
            output_name="preference_ledger",
            data_version=dg.DataVersion(frame_digest(data.ledger)),
            metadata={
                "dagster/row_count": len(data.ledger),
                "answers_judged": len(exchanges),
                "duplicate_rows": int(data.ledger.attrs.get("duplicate_rows", 0)),
                "reasons": dg.MetadataValue.md(reasons.to_markdown(index=False)),
                "preview": preview(
                    data.ledger, ["response_id", "unpaired_rows", "pairs", "reason"]
                ),
            },
        )

    @dg.asset_check(
        asset="preference_ledger",
        additional_ins={"preference_dataset": dg.AssetIn("preference_dataset")},
        blocking=True,
        description="One ledger row per judged answer, and the rows and pairs it counts are "
        "exactly those preference_dataset holds (every materialized quarter).",
    )
    def preference_ledger_accounts_for_every_answer(
        preference_ledger: Any, preference_dataset: Any
    ) -> dg.AssetCheckResult:
        # One quarter arrives as its value, several as {quarter: value}.
        ledgers = (
            {"": preference_ledger}
            if isinstance(preference_ledger, pd.DataFrame)
            else dict(preference_ledger)
        )
        datasets = (
            {"": preference_dataset}
            if type(preference_dataset).__name__ == "DatasetDict"
            else dict(preference_dataset)
        )
        problems = []
        for quarter, ledger in sorted(ledgers.items()):
            if quarter not in datasets:
                problems.append(f"{quarter}: a ledger without its preference_dataset")
                continue
            problems += [
                f"{quarter} {p}".strip() for p in ledger_problems(ledger, datasets[quarter])
            ]
        return dg.AssetCheckResult(
            passed=not problems,
            description="; ".join(problems)
            or f"{sum(len(ledger) for ledger in ledgers.values())} answers accounted for",
        )

    return [preferences], [preference_ledger_accounts_for_every_answer]


def ledger_problems(ledger: pd.DataFrame, dataset: Any) -> list[str]:
    """Where one quarter's ledger and its preference data disagree."""
    problems = []
    if ledger["response_id"].duplicated().any():
        problems.append("an answer has more than one ledger row")
    rows, kto = int(ledger["unpaired_rows"].sum()), len(dataset["kto"])
    if rows != kto:
        problems.append(f"the ledger counts {rows} kto rows, the dataset holds {kto}")
    # A pair of two answers is counted on both.
    sides = int(ledger["pairs"].sum())
    counted = sum(len(ids) for ids in dataset["dpo"]["response_ids"]) if len(dataset["dpo"]) else 0
    if sides != counted:
        problems.append(f"the ledger counts {sides} pair sides, the dataset holds {counted}")
    unused = ledger[(ledger["unpaired_rows"] == 0) & (ledger["pairs"] == 0)]
    if not unused["reason"].str.startswith("preference.").all():
        problems.append("an answer that became nothing has no preference.* reason")
    return problems
