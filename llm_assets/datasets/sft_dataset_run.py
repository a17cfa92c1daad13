"""The SFT dataset under the base model's tokenizer: train/validation (golden pairs, their near
duplicates and rows over max_length left out), the ledger of where every pair went, the exported
files with their dataset card, and the chat template training must apply.

Run it with `run_sft_dataset`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from llm_assets.contracts import BaseModelFolder, ChatTemplate, Markdown, RagIndex
from llm_assets.datasets.canaries import CANARY_SOURCE, plant_canaries
from llm_assets.datasets.card import CardFacts, render_dataset_card, write_dataset_export
from llm_assets.datasets.config import DatasetConfig
from llm_assets.datasets.ledger import dataset_ledger, dataset_ledger_summary
from llm_assets.datasets.lengths import conversation_token_counts, length_stats
from llm_assets.datasets.retrieval import with_retrieved_context, without_context_gaps
from llm_assets.datasets.sft import records_without_pairs
from llm_assets.datasets.splits import TrainingSplits, training_splits
from llm_assets.settings import Profile
from llm_assets.stage_output import ArtifactFolders, StageOutput
from llm_assets.storage import frame_digest

if TYPE_CHECKING:
    from datasets import DatasetDict

TRAIN_PREVIEW = ["task", "instruction", "output"]

CountTokens = Callable[[Iterable[Sequence[dict[str, str]]]], list[int]]


@dataclass(frozen=True)
class SftDatasetRun:
    sft_dataset: StageOutput[DatasetDict]
    dataset_ledger: StageOutput[pd.DataFrame]
    chat_template: StageOutput[ChatTemplate]


@dataclass(frozen=True)
class _Measured:
    """The splits as measured under the training chat template, and what was counted on the
    way."""

    splits: TrainingSplits
    golden: pd.DataFrame
    canary_rows: int
    retrieval_report: dict[str, object]


def run_sft_dataset(
    profile: Profile,
    cleaned_corpus: pd.DataFrame,
    sft_pairs: pd.DataFrame,
    golden_set: pd.DataFrame,
    base_model: BaseModelFolder,
    rag_index: RagIndex,
    folders: ArtifactFolders,
    run_id: str,
) -> SftDatasetRun:
    """The dataset, its ledger and chat template from `sft_pairs` less `golden_set`; the files
    are exported to `folders`' folder for (`sft_dataset`, `run_id`). `profile` is read for
    `datasets`, `redteam.canaries`, `redteam.canary_copies` and `cleaning.quality.languages`."""
    from transformers import AutoTokenizer

    from llm_assets.datasets.chat_template import training_chat_template

    config = profile.datasets
    tokenizer = AutoTokenizer.from_pretrained(base_model.path)
    template, origin = training_chat_template(tokenizer)
    tokenizer.chat_template = template

    def count(conversations: Iterable[Sequence[dict[str, str]]]) -> list[int]:
        return conversation_token_counts(tokenizer, conversations)

    measured = _measured_splits(profile, sft_pairs, golden_set, rag_index, count)
    splits, golden = measured.splits, measured.golden
    ledger = dataset_ledger(
        records_without_pairs(cleaned_corpus, sft_pairs, config),
        golden,
        splits.train,
        splits.validation,
        splits.too_long,
        splits.leaked,
        config.max_length,
    )
    stats = length_stats(
        {
            "train": splits.train["token_count"],
            "validation": splits.validation["token_count"],
            "golden": golden["token_count"],
            "dropped: too long": splits.too_long["token_count"],
        },
        config.max_length,
    )
    summary = dataset_ledger_summary(ledger)
    exported = {"train": splits.train, "validation": splits.validation, "golden": golden}
    facts = _card_facts(profile, base_model, template, origin, stats, summary)
    card = render_dataset_card(exported, facts)
    with folders.new_folder("sft_dataset", run_id) as folder:
        write_dataset_export(folder, exported, card, template)
    export_dir = folders.folder("sft_dataset", run_id)
    return SftDatasetRun(
        sft_dataset=_dataset_output(measured, stats, export_dir, card, origin),
        dataset_ledger=_ledger_output(ledger, summary),
        chat_template=_template_output(template, origin, export_dir, base_model),
    )


def _measured_splits(
    profile: Profile,
    sft_pairs: pd.DataFrame,
    golden_set: pd.DataFrame,
    rag_index: RagIndex,
    count: CountTokens,
) -> _Measured:
    config = profile.datasets
    pairs = sft_pairs
    if config.retrieval.enabled:
        pairs = _with_retrieval(pairs, rag_index, config)
    pairs = pairs.assign(token_count=count(pairs["messages"]))
    golden = golden_set.assign(token_count=count(golden_set["messages"]))
    splits = training_splits(
        pairs,
        golden,
        config.max_length,
        config.validation_ratio,
        config.seed,
        config.leak_threshold,
    )
    # Canaries join train only, before the ledger, so the ledger accounts for them too.
    splits = plant_canaries(
        splits,
        profile.redteam.canaries,
        profile.redteam.canary_copies,
        config.system_prompt,
        count,
    )
    canary_rows = int((splits.train["source"] == CANARY_SOURCE).sum())
    retrieval_report: dict[str, object] = {}
    if config.retrieval.enabled:
        splits = replace(splits, train=without_context_gaps(splits.train))
        retrieval_report = {
            "retrieval_k": config.retrieval.k,
            "oracle_share_configured": config.retrieval.oracle_share,
            "oracle_share_in_train": round(float(splits.train["context_has_oracle"].mean()), 4),
        }
    return _Measured(splits, golden, canary_rows, retrieval_report)


def _with_retrieval(
    pairs: pd.DataFrame, rag_index: RagIndex, config: DatasetConfig
) -> pd.DataFrame:
    from llm_assets.rag.retrieval import open_retriever

    search_many = open_retriever(rag_index).retrieve_many
    return with_retrieved_context(pairs, search_many, config.retrieval, config.seed)


def _card_facts(
    profile: Profile,
    base_model: BaseModelFolder,
    template: str,
    origin: str,
    stats: pd.DataFrame,
    summary: pd.DataFrame,
) -> CardFacts:
    config = profile.datasets
    return CardFacts(
        base_model=str(base_model.model_id),
        max_length=config.max_length,
        chat_template=template,
        chat_template_origin=origin,
        languages=list(profile.cleaning.quality.languages) or ["en"],
        system_prompt=config.system_prompt,
        teacher_model=config.teacher.model if config.teacher.enabled else None,
        length_stats=stats,
        ledger_summary=summary[summary["action"] == "dropped"],
    )


def _dataset_output(
    measured: _Measured, stats: pd.DataFrame, export_dir: Path, card: str, origin: str
) -> StageOutput[DatasetDict]:
    from datasets import Dataset, DatasetDict

    splits = measured.splits
    dataset = DatasetDict(
        train=Dataset.from_pandas(splits.train, preserve_index=False),
        validation=Dataset.from_pandas(splits.validation, preserve_index=False),
    )
    both = pd.concat([splits.train.assign(split="t"), splits.validation.assign(split="v")])
    return StageOutput(
        dataset,
        {
            "train_rows": len(splits.train),
            "validation_rows": len(splits.validation),
            "dagster/row_count": len(splits.train) + len(splits.validation),
            "dropped_too_long": len(splits.too_long),
            "dropped_golden_leak": len(splits.leaked),
            "canary_rows_planted": measured.canary_rows,
            **measured.retrieval_report,
            "token_lengths": Markdown(stats.to_markdown(index=False)),
            "export": export_dir,
            "dataset_card": Markdown(card.split("\n---\n", 1)[-1]),
            "chat_template_origin": origin,
        },
        frame_digest(both),
        preview=splits.train[TRAIN_PREVIEW],
    )


def _ledger_output(ledger: pd.DataFrame, summary: pd.DataFrame) -> StageOutput[pd.DataFrame]:
    reasons = ledger.loc[ledger["action"] == "dropped", "reason"].value_counts().to_dict()
    return StageOutput(
        ledger,
        {
            "dagster/row_count": len(ledger),
            "outcomes": Markdown(summary.to_markdown(index=False)),
            "dropped_by_reason": reasons,
        },
        frame_digest(ledger),
    )


def _template_output(
    template: str, origin: str, export_dir: Path, base_model: BaseModelFolder
) -> StageOutput[ChatTemplate]:
    from llm_assets.datasets.chat_template import template_digest

    digest = template_digest(template)
    path = export_dir / "chat_template.jinja"
    chat_template = ChatTemplate(
        template=template,
        origin=origin,
        digest=digest,
        path=str(path),
        base_model_id=base_model.model_id,
        base_weights_digest=base_model.weights_digest,
    )
    report: dict[str, object] = {
        "origin": origin,
        "digest": digest,
        "path": path,
        "template": Markdown(f"```jinja\n{template}\n```"),
    }
    return StageOutput(chat_template, report, digest)
