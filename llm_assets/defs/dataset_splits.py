"""The SFT dataset step of group `datasets`: train/validation under the base model's tokenizer,
the ledger of what was left out, the exported files and the chat template, and the check that
the saved template renders exactly as serving does."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import BaseModelFolder, ChatTemplate, RagIndex
from llm_assets.datasets.canaries import CANARY_SOURCE, plant_canaries
from llm_assets.datasets.card import CardFacts, render_dataset_card, write_dataset_export
from llm_assets.datasets.ledger import dataset_ledger, dataset_ledger_summary
from llm_assets.datasets.lengths import conversation_token_counts, length_stats
from llm_assets.datasets.retrieval import with_retrieved_context, without_context_gaps
from llm_assets.datasets.sft import records_without_pairs
from llm_assets.datasets.splits import training_splits
from llm_assets.defs.check_results import preview
from llm_assets.defs.resources import ArtifactStoreResource
from llm_assets.settings import Profile
from llm_assets.storage import frame_digest

CHECK_ROWS = 16


def build_sft_dataset_asset(settings: AssetSettings[Profile]) -> dg.AssetsDefinition:
    code_version = settings.code_version

    @dg.multi_asset(
        name="sft_dataset_splits",
        group_name="datasets",
        outs={
            "sft_dataset": dg.AssetOut(
                code_version=code_version,
                metadata=settings.metadata(),
                kinds={"huggingface"},
                description="`datasets.DatasetDict` with `train` and `validation`: golden pairs "
                "and their near duplicates excluded, rows over max_length tokens dropped whole.",
            ),
            "dataset_ledger": dg.AssetOut(
                code_version=code_version,
                metadata=settings.metadata(),
                kinds={"pandas"},
                description="One row per pair (kept, held out, or dropped and why) and per "
                "cleaned record that yielded no pair.",
            ),
            "chat_template": dg.AssetOut(
                code_version=code_version,
                metadata=settings.metadata(),
                kinds={"jinja"},
                description="The chat template the dataset was measured with, that training "
                "applies and saves with the adapter: the base tokenizer's own, else ChatML.",
            ),
        },
    )
    def sft_dataset_splits(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        cleaned_corpus: pd.DataFrame,
        sft_pairs: pd.DataFrame,
        golden_set: pd.DataFrame,
        base_model: BaseModelFolder,
        rag_index: RagIndex,
    ) -> Any:
        from datasets import Dataset, DatasetDict
        from transformers import AutoTokenizer

        from llm_assets.datasets.chat_template import template_digest, training_chat_template

        profile = settings.profile
        config = profile.datasets
        tokenizer = AutoTokenizer.from_pretrained(base_model.path)
        template, origin = training_chat_template(tokenizer)
        tokenizer.chat_template = template
        pairs = sft_pairs
        if config.retrieval.enabled:
            from llm_assets.rag.retrieval import open_retriever

            search_many = open_retriever(rag_index).retrieve_many
            pairs = with_retrieved_context(pairs, search_many, config.retrieval, config.seed)
        pairs = pairs.assign(token_count=conversation_token_counts(tokenizer, pairs["messages"]))
        golden = golden_set.assign(
            token_count=conversation_token_counts(tokenizer, golden_set["messages"])
        )
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
            lambda messages: conversation_token_counts(tokenizer, messages),
        )
        canary_rows = int((splits.train["source"] == CANARY_SOURCE).sum())
        retrieval_metadata: dict[str, Any] = {}
        if config.retrieval.enabled:
            splits = replace(splits, train=without_context_gaps(splits.train))
            retrieval_metadata = {
                "retrieval_k": config.retrieval.k,
                "oracle_share_configured": config.retrieval.oracle_share,
                "oracle_share_in_train": round(float(splits.train["context_has_oracle"].mean()), 4),
            }
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
        card = render_dataset_card(
            exported,
            CardFacts(
                base_model=str(base_model.model_id),
                max_length=config.max_length,
                chat_template=template,
                chat_template_origin=origin,
                languages=list(profile.cleaning.quality.languages) or ["en"],
                system_prompt=config.system_prompt,
                teacher_model=config.teacher.model if config.teacher.enabled else None,
                length_stats=stats,
                ledger_summary=summary[summary["action"] == "dropped"],
            ),
        )
        with artifacts.new_folder("sft_dataset", context.run.run_id) as folder:
            write_dataset_export(folder, exported, card, template)
        export_dir = artifacts.folder("sft_dataset", context.run.run_id)

        dataset = DatasetDict(
            train=Dataset.from_pandas(splits.train, preserve_index=False),
            validation=Dataset.from_pandas(splits.validation, preserve_index=False),
        )
        reasons = ledger.loc[ledger["action"] == "dropped", "reason"].value_counts().to_dict()
        yield dg.Output(
            dataset,
            output_name="sft_dataset",
            data_version=dg.DataVersion(
                frame_digest(
                    pd.concat([splits.train.assign(split="t"), splits.validation.assign(split="v")])
                )
            ),
            metadata={
                "train_rows": len(splits.train),
                "validation_rows": len(splits.validation),
                "dagster/row_count": len(splits.train) + len(splits.validation),
                "dropped_too_long": len(splits.too_long),
                "dropped_golden_leak": len(splits.leaked),
                "canary_rows_planted": canary_rows,
                **retrieval_metadata,
                "token_lengths": dg.MetadataValue.md(stats.to_markdown(index=False)),
                "export": dg.MetadataValue.path(str(export_dir)),
                "dataset_card": dg.MetadataValue.md(card.split("\n---\n", 1)[-1]),
                "chat_template_origin": origin,
                "preview": preview(splits.train, ["task", "instruction", "output"]),
            },
        )
        yield dg.Output(
            ledger,
            output_name="dataset_ledger",
            data_version=dg.DataVersion(frame_digest(ledger)),
            metadata={
                "dagster/row_count": len(ledger),
                "outcomes": dg.MetadataValue.md(summary.to_markdown(index=False)),
                "dropped_by_reason": dg.MetadataValue.json(reasons),
            },
        )
        digest = template_digest(template)
        yield dg.Output(
            ChatTemplate(
                template=template,
                origin=origin,
                digest=digest,
                path=str(export_dir / "chat_template.jinja"),
                base_model_id=base_model.model_id,
                base_weights_digest=base_model.weights_digest,
            ),
            output_name="chat_template",
            data_version=dg.DataVersion(digest),
            metadata={
                "origin": origin,
                "digest": digest,
                "path": dg.MetadataValue.path(str(export_dir / "chat_template.jinja")),
                "template": dg.MetadataValue.md(f"```jinja\n{template}\n```"),
            },
        )

    return sft_dataset_splits


def sample_conversations(sft_dataset: Any, rows: int = CHECK_ROWS) -> list[dict[str, Any]]:
    """The first rows of each split, as plain {messages, token_count} dicts."""
    sample = []
    for name in sft_dataset:
        split = sft_dataset[name]
        for row in split.select(range(min(rows // len(sft_dataset), len(split)))):
            messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
            sample.append({"messages": messages, "token_count": int(row["token_count"])})
    return sample


def build_template_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="sft_dataset",
        additional_ins={"chat_template": dg.AssetIn("chat_template"), "base_model": dg.AssetIn()},
        blocking=True,
        description="Sample rows rendered with the template saved beside the dataset and with "
        "the base tokenizer as serving loads it give the same text, token ids and token counts.",
    )
    def sft_dataset_renders_like_serving(
        sft_dataset: Any, chat_template: ChatTemplate, base_model: BaseModelFolder
    ) -> dg.AssetCheckResult:
        from llm_assets.datasets.chat_template import (
            load_chat_tokenizer,
            template_differences,
            template_digest,
        )

        saved = Path(chat_template.path).read_text(encoding="utf-8")
        problems = []
        if template_digest(saved) != chat_template.digest:
            problems.append(f"{chat_template.path} was changed after the dataset was built")
        sample = sample_conversations(sft_dataset)
        conversations = [row["messages"] for row in sample]
        serving = load_chat_tokenizer(base_model.path)
        problems += template_differences(
            load_chat_tokenizer(base_model.path, chat_template=saved), serving, conversations
        )
        recounted = conversation_token_counts(serving, conversations)
        problems += [
            f"row {number}: {row['token_count']} tokens stored, {count} when served"
            for number, (row, count) in enumerate(zip(sample, recounted, strict=True))
            if row["token_count"] != count
        ]
        return dg.AssetCheckResult(
            passed=not problems,
            description=f"{len(sample)} conversations compared; {len(problems)} differences",
            metadata={"differences": dg.MetadataValue.json(problems[:20])},
        )

    return sft_dataset_renders_like_serving
