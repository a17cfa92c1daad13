"""One quarter's judged answers as preference data (KTO rows and DPO pairs) with a ledger row per
answer, and the audit that the ledger and the data agree.

Run it with `run_preferences`; audit every stored quarter with `preference_ledger_check`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from llm_assets.contracts import Markdown
from llm_assets.datasets.outputs import DatasetCheck
from llm_assets.datasets.preferences import preference_data
from llm_assets.settings import Profile
from llm_assets.sources.feedback import latest_per_response
from llm_assets.stage_output import StageOutput
from llm_assets.storage import frame_digest

if TYPE_CHECKING:
    from datasets import DatasetDict

LEDGER_PREVIEW = ["response_id", "unpaired_rows", "pairs", "reason"]


@dataclass(frozen=True)
class PreferenceRun:
    preference_dataset: StageOutput[DatasetDict]
    preference_ledger: StageOutput[pd.DataFrame]


def run_preferences(
    profile: Profile,
    feedback_rows: Sequence[Mapping[str, Any]],
    quarter: str,
    start: datetime,
    end: datetime,
) -> PreferenceRun:
    """The feedback `rows` given in [`start`, `end`) (serving.store.read_feedback) as the
    preference data of `quarter`. `profile` is read for `feedback.min_rating_kept`, the system
    prompt, the conversation template and the PII redaction settings."""
    from datasets import Dataset, DatasetDict

    from llm_assets.cleaning.pii import redact_pii_batch

    cleaning = profile.cleaning
    exchanges = latest_per_response(feedback_rows)

    def redact(texts: list[str]) -> list[str]:
        found = redact_pii_batch(texts, cleaning.pii_entities, allow=cleaning.pii_allow_list)
        return [text for text, _ in found]

    data = preference_data(
        exchanges,
        profile.feedback.min_rating_kept,
        quarter,
        profile.datasets.templates.conversation,
        profile.datasets.system_prompt,
        redact if cleaning.redact_pii else None,
    )
    dataset = DatasetDict(
        kto=Dataset.from_pandas(data.unpaired, preserve_index=False),
        dpo=Dataset.from_pandas(data.paired, preserve_index=False),
    )
    rows = pd.concat([data.unpaired.astype(str), data.paired.astype(str)], axis=0)
    reasons = data.ledger["reason"].value_counts().rename_axis("reason").reset_index()
    return PreferenceRun(
        preference_dataset=StageOutput(
            dataset,
            {
                "kto_rows": len(data.unpaired),
                "kto_positive": int(data.unpaired["label"].sum()),
                "dpo_pairs": len(data.paired),
                "pairs_by_why": data.paired.groupby("why").size().to_dict(),
                "quarter": f"{start:%Y-%m-%d} to {end:%Y-%m-%d}",
            },
            frame_digest(rows),
        ),
        preference_ledger=StageOutput(
            data.ledger,
            {
                "dagster/row_count": len(data.ledger),
                "answers_judged": len(exchanges),
                "duplicate_rows": int(data.ledger.attrs.get("duplicate_rows", 0)),
                "reasons": Markdown(reasons.to_markdown(index=False)),
            },
            frame_digest(data.ledger),
            preview=data.ledger[LEDGER_PREVIEW],
        ),
    )


def preference_ledger_check(preference_ledger: Any, preference_dataset: Any) -> DatasetCheck:
    """Passes when each quarter's ledger has one row per judged answer and counts exactly the
    rows and pairs its preference data holds. One quarter arrives as its value, several as
    {quarter: value}."""
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
        problems += [f"{quarter} {p}".strip() for p in ledger_problems(ledger, datasets[quarter])]
    return DatasetCheck(
        passed=not problems,
        description="; ".join(problems)
        or f"{sum(len(ledger) for ledger in ledgers.values())} answers accounted for",
    )


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
