"""The `golden_predictions` step: every golden prompt answered by the tuned model, its base and
the registered champion (when one exists and can read the same prompts), each as it is served
and tuned and base also in the other mode; and the blinded A/B review files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from llm_assets.contracts import Adapter, RagIndex
from llm_assets.evaluation.config import EvaluationConfig
from llm_assets.stage_output import ArtifactFolders, MlflowStore, StageOutput
from llm_assets.storage import frame_digest

if TYPE_CHECKING:
    from datasets import DatasetDict

    from llm_assets.evaluation.predictions import Contender
    from llm_assets.evaluation.review import ReviewExport
    from llm_assets.rag.context import ContextFormat
    from llm_assets.serving.config import GuardrailsConfig, ServingConfig

ASSET = "golden_predictions"
PREVIEW_COLUMNS = ["model", "task", "answer"]


def review_folder(config: EvaluationConfig, profile_dir: Path, artifacts_dir: Path) -> Path:
    """`evaluation.review_dir` (relative to the profile), else `review/` beside the artifact
    store: <state dir>/review."""
    if config.review_dir is None:
        return artifacts_dir.parent / "review"
    path = Path(config.review_dir)
    return path if path.is_absolute() else profile_dir / path


def run_golden_predictions(
    qlora_adapter: Adapter,
    golden_set: pd.DataFrame,
    rag_index: RagIndex,
    sft_dataset: DatasetDict,
    *,
    config: EvaluationConfig,
    max_length: int,
    serving: ServingConfig,
    guardrails: GuardrailsConfig,
    system_prompt: str | None,
    pii_allow_list: list[str],
    registered_model_name: str,
    model_kind: str,
    review_dir: Path,
    folders: ArtifactFolders,
    run_id: str,
    mlflow: MlflowStore,
    warn: Callable[[str], None],
) -> StageOutput[pd.DataFrame]:
    """The answers table (one row per prompt and model, with tokens and timings, each model's
    perplexity on the golden and the first `max_eval_rows` validation conversations at
    `max_length` tokens, measured on the same load, and the review item and side of each tuned
    and baseline answer), the review files written to `review_dir` and the key that unblinds
    them kept in the `golden_predictions` folder of `run_id`. `serving` gives the retrieval
    context when neither model records its own."""
    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.predictions import (
        PERPLEXITY_COLUMNS,
        answer_golden_set,
        generation_speed,
    )
    from llm_assets.evaluation.review import write_review_files

    tokenizer = load_chat_tokenizer(qlora_adapter.path)
    champion, skipped = _champion_to_compare(
        tokenizer, config.compare_with_champion, mlflow, registered_model_name, warn
    )
    golden = golden_set.head(config.max_eval_rows)
    models, prompts_by_mode = _contenders_and_prompts(
        qlora_adapter,
        champion,
        golden,
        rag_index,
        serving,
        guardrails,
        system_prompt,
        pii_allow_list,
    )
    answer = None
    if config.engine == "llama-cpp":
        from llm_assets.export.gguf import llama_cpp_answerer

        answer = llama_cpp_answerer(default_pre=model_kind == "tiny")
    validation = [
        [dict(m) for m in conversation]
        for conversation in list(sft_dataset["validation"]["messages"])[: config.max_eval_rows]
    ]
    table = answer_golden_set(
        models,
        tokenizer,
        golden,
        config.generation,
        prompts_by_mode,
        answer,
        validation=validation,
        max_length=max_length,
    )

    baseline = "champion" if champion else "base"
    export = _review_export(table, baseline, config.review_seed)
    files = write_review_files(export, review_dir)
    # The key that unblinds the review stays here, never in the review folder.
    with folders.new_folder(ASSET, run_id) as folder:
        (folder / "review_key.json").write_text(
            json.dumps({"export_id": export.export_id, "items": export.key_records()})
        )
        table.drop(columns=PERPLEXITY_COLUMNS).to_csv(folder / "predictions.csv", index=False)
    sides = export.key.melt(id_vars=["item_id", "pair_id"], var_name="side", value_name="model")
    table = table.merge(
        sides.rename(columns={"item_id": "review_item", "side": "review_side"}),
        on=["pair_id", "model"],
        how="left",
    ).assign(export_id=export.export_id, champion_skipped=skipped)
    report: dict[str, object] = {
        "dagster/row_count": len(table),
        "models": ", ".join(table["model"].unique()),
        "baseline": baseline,
        "champion_skipped": skipped or "no",
        "review_export_id": export.export_id,
        "review_csv": files["csv"],
        "review_jsonl": files["jsonl"],
        "speed": generation_speed(table),
    }
    version = frame_digest(table.drop(columns=["batch_latency_ms"]))
    return StageOutput(table, report, version)


def _champion_to_compare(
    tokenizer: Any,
    compare: bool,
    mlflow: MlflowStore,
    registered_model_name: str,
    warn: Callable[[str], None],
) -> tuple[dict[str, Any] | None, str]:
    """The champion's manifest when it is compared, and why it is not ("" when it is, or when
    there is none)."""
    if not compare:
        return None, ""
    from llm_assets.evaluation.predictions import vocabulary_mismatch
    from llm_assets.evaluation.registry import find_champion

    champion = find_champion(mlflow.tracking(), registered_model_name)
    reason = vocabulary_mismatch(tokenizer, champion) if champion else None
    if champion and reason:
        skipped = f"version {champion.get('version')}: {reason}"
        warn(f"champion not compared: {skipped}")
        return None, skipped
    return champion, ""


def _contenders_and_prompts(
    qlora_adapter: Adapter,
    champion: dict[str, Any] | None,
    golden: pd.DataFrame,
    rag_index: RagIndex,
    serving: ServingConfig,
    guardrails: GuardrailsConfig,
    system_prompt: str | None,
    allow: list[str],
) -> tuple[list[Contender], dict[str, Any]]:
    """The models that answer, each as it is served, and the golden prompts in both modes."""
    from llm_assets.evaluation.grounding import ground_prompts
    from llm_assets.evaluation.predictions import CLOSED_BOOK, RETRIEVAL, contenders, golden_prompts
    from llm_assets.rag.context import read_context_format
    from llm_assets.rag.retrieval import open_retriever
    from llm_assets.serving.guardrails import guardrails_for

    search_many = open_retriever(rag_index).retrieve_many
    served_format = read_context_format(qlora_adapter.path)
    champion_format = read_context_format(champion["path"]) if champion else None
    context_format = _context_format(served_format, champion_format, serving)
    prompts = golden_prompts(golden)
    prompts_by_mode = {
        CLOSED_BOOK: ground_prompts(prompts, None, context_format, system_prompt),
        RETRIEVAL: ground_prompts(prompts, search_many, context_format, system_prompt),
    }
    models = contenders(
        qlora_adapter,
        champion,
        RETRIEVAL if served_format else CLOSED_BOOK,
        RETRIEVAL if champion_format else CLOSED_BOOK,
        guardrails_for(qlora_adapter.path, guardrails, allow),
        guardrails_for(champion["path"], guardrails, allow) if champion else None,
    )
    return models, prompts_by_mode


def _context_format(
    served: ContextFormat | None, champion: ContextFormat | None, serving: ServingConfig
) -> ContextFormat:
    from llm_assets.rag.context import ContextFormat

    return served or champion or ContextFormat(serving.rag_k, serving.rag_max_chars)


def _review_export(table: pd.DataFrame, baseline: str, seed: int) -> ReviewExport:
    """The blinded A/B sheet: the tuned answer against the baseline's, sides and order shuffled
    with `seed`."""
    from llm_assets.evaluation.predictions import answers_by_model
    from llm_assets.evaluation.review import build_review_export

    tuned = table[table["model"] == "tuned"]
    pair_ids = tuned["pair_id"].to_list()
    answers = answers_by_model(table, pair_ids)
    return build_review_export(
        pair_ids,
        tuned["conversation"].to_list(),
        tuned["reference"].to_list(),
        answers["tuned"],
        answers[baseline],
        baseline_label=baseline,
        seed=seed,
    )
