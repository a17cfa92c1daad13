"""Group `evaluation`: the tuned model against its base (and the current champion) on the same
held-out conversations; the blinded files for human review and the scores that come back; the
report with the promotion verdict.

`golden_predictions` -> `human_review_scores` -> `eval_report` <- `redteam_report`
"""

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import Adapter, HumanReviewScores, RagIndex, RedTeamReport
from llm_assets.defs.check_results import preview
from llm_assets.defs.resources import ArtifactStoreResource, MlflowResource
from llm_assets.settings import Profile
from llm_assets.storage import frame_digest


def review_folder(profile: Profile, artifacts: ArtifactStoreResource) -> Path:
    """`evaluation.review_dir` (relative to the profile), else `review/` beside the artifact
    store: <state dir>/review."""
    configured = profile.evaluation.review_dir
    if configured is None:
        return Path(artifacts.base_dir).parent / "review"
    path = Path(configured)
    return path if path.is_absolute() else profile.base_dir / path


def metric_cache(artifacts: ArtifactStoreResource) -> Path:
    """Where `evaluate` copies the project's metric modules: inside the state folder."""
    return Path(artifacts.base_dir).parent / "cache" / "evaluate"


def build_evaluation_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    code = ["evaluation", "defs/evaluation.py"]
    # Generation re-runs only for the settings it reads, not for a new bootstrap size.
    predictions_settings = AssetSettings(
        profile,
        "golden_predictions",
        reads=[
            *(
                f"evaluation.{name}"
                for name in (
                    "max_eval_rows",
                    "engine",
                    "generation",
                    "compare_with_champion",
                    "review_dir",
                    "review_seed",
                )
            ),
            "model.kind",
            "use_case.registered_model_name",
            "serving.rag_k",
            "serving.rag_max_chars",
            "datasets.system_prompt",
            "guardrails",
            "cleaning.pii_allow_list",
        ],
        code=[*code, "serving/guardrails.py", "rag/context.py"],
    )
    review_settings = AssetSettings(
        profile, "human_review_scores", reads=["evaluation.review_dir"], code=code
    )
    # The report also judges promotion (use_case.criteria) and scores perplexity at
    # datasets.max_length: a change to either must re-run it.
    report_settings = AssetSettings(
        profile,
        "eval_report",
        reads=["evaluation", "use_case", "datasets.max_length"],
        runtime=["evaluation.batch_size"],
        code=code,
    )

    @dg.asset(
        group_name="evaluation",
        code_version=predictions_settings.code_version,
        metadata=predictions_settings.metadata(),
        kinds={"pytorch", "mlflow"},
    )
    def golden_predictions(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        qlora_adapter: Adapter,
        golden_set: pd.DataFrame,
        rag_index: RagIndex,
    ) -> dg.Output[pd.DataFrame]:
        """Answers to every golden prompt from the tuned model, its base and the MLflow
        `champion` (when one exists), one row per prompt and model with tokens and timings; and
        the blinded A/B review files (tuned vs champion, else base) in the review folder.
        Each model answers as it is served (with `rag_index` context when it was trained with
        it); tuned and base also answer in the other mode (`tuned/closed-book` or
        `tuned/retrieval`), so the report shows what retrieval adds."""
        from llm_assets.datasets.chat_template import load_chat_tokenizer
        from llm_assets.evaluation.grounding import ground_prompts
        from llm_assets.evaluation.predictions import (
            CLOSED_BOOK,
            RETRIEVAL,
            answer_golden_set,
            answers_by_model,
            contenders,
            generation_speed,
            golden_prompts,
            vocabulary_mismatch,
        )
        from llm_assets.evaluation.registry import find_champion
        from llm_assets.evaluation.review import build_review_export, write_review_files
        from llm_assets.rag.context import ContextFormat, read_context_format
        from llm_assets.rag.retrieval import open_retriever
        from llm_assets.serving.guardrails import guardrails_for

        profile = predictions_settings.profile
        config = profile.evaluation
        tokenizer = load_chat_tokenizer(qlora_adapter.path)
        champion, skipped = None, ""
        if config.compare_with_champion:
            champion = find_champion(mlflow.tracking(), profile.use_case.registered_model_name)
            reason = vocabulary_mismatch(tokenizer, champion) if champion else None
            if champion and reason:
                skipped = f"version {champion.get('version')}: {reason}"
                context.log.warning(f"champion not compared: {skipped}")
                champion = None
        golden = golden_set.head(config.max_eval_rows)
        search_many = open_retriever(rag_index).retrieve_many
        served_format = read_context_format(qlora_adapter.path)
        champion_format = read_context_format(champion["path"]) if champion else None
        context_format = (
            served_format
            or champion_format
            or ContextFormat(profile.serving.rag_k, profile.serving.rag_max_chars)
        )
        prompts = golden_prompts(golden)
        system_prompt = profile.datasets.system_prompt
        prompts_by_mode = {
            CLOSED_BOOK: ground_prompts(prompts, None, context_format, system_prompt),
            RETRIEVAL: ground_prompts(prompts, search_many, context_format, system_prompt),
        }
        allow = profile.cleaning.pii_allow_list
        models = contenders(
            qlora_adapter,
            champion,
            RETRIEVAL if served_format else CLOSED_BOOK,
            RETRIEVAL if champion_format else CLOSED_BOOK,
            guardrails_for(qlora_adapter.path, profile.guardrails, allow),
            guardrails_for(champion["path"], profile.guardrails, allow) if champion else None,
        )
        answer = None
        if config.engine == "llama-cpp":
            from llm_assets.export.gguf import llama_cpp_answerer

            answer = llama_cpp_answerer(default_pre=profile.model.kind == "tiny")
        table = answer_golden_set(
            models, tokenizer, golden, config.generation, prompts_by_mode, answer
        )

        tuned = table[table["model"] == "tuned"]
        baseline = "champion" if champion else "base"
        pair_ids = tuned["pair_id"].to_list()
        answers = answers_by_model(table, pair_ids)
        export = build_review_export(
            pair_ids,
            tuned["conversation"].to_list(),
            tuned["reference"].to_list(),
            answers["tuned"],
            answers[baseline],
            baseline_label=baseline,
            seed=config.review_seed,
        )
        review_dir = review_folder(profile, artifacts)
        files = write_review_files(export, review_dir)
        # The key that unblinds the review stays here, never in the review folder.
        with artifacts.new_folder("golden_predictions", context.run.run_id) as folder:
            (folder / "review_key.json").write_text(
                json.dumps({"export_id": export.export_id, "items": export.key_records()})
            )
            table.to_csv(folder / "predictions.csv", index=False)
        sides = export.key.melt(id_vars=["item_id", "pair_id"], var_name="side", value_name="model")
        table = table.merge(
            sides.rename(columns={"item_id": "review_item", "side": "review_side"}),
            on=["pair_id", "model"],
            how="left",
        ).assign(export_id=export.export_id, champion_skipped=skipped)
        speed = generation_speed(table)
        return dg.Output(
            table,
            data_version=dg.DataVersion(frame_digest(table.drop(columns=["batch_latency_ms"]))),
            metadata={
                "dagster/row_count": len(table),
                "models": ", ".join(table["model"].unique()),
                "baseline": baseline,
                "champion_skipped": skipped or "no",
                "review_export_id": export.export_id,
                "review_csv": dg.MetadataValue.path(str(files["csv"])),
                "review_jsonl": dg.MetadataValue.path(str(files["jsonl"])),
                "speed": dg.MetadataValue.json(speed),
                "preview": preview(table, ["model", "task", "answer"], rows=6),
            },
        )

    @dg.asset(
        group_name="evaluation",
        code_version=review_settings.code_version,
        metadata=review_settings.metadata(),
        kinds={"pandas"},
    )
    def human_review_scores(
        artifacts: ArtifactStoreResource, golden_predictions: pd.DataFrame
    ) -> dg.Output[HumanReviewScores]:
        """Scores reviewers wrote into the review files of the current export (1-5 for
        accuracy, helpfulness, tone and factual correctness), validated and unblinded into mean
        scores per model. Materialize it again after reviewers save their files."""
        from llm_assets.evaluation.review import (
            REVIEW_CRITERIA,
            ReviewFileError,
            import_reviews,
            review_file_paths,
        )

        export_id = str(golden_predictions["export_id"].iloc[0])
        keyed = golden_predictions.dropna(subset=["review_item"])
        key: dict[str, dict[str, str]] = {}
        for row in keyed.itertuples():
            key.setdefault(str(row.review_item), {})[str(row.review_side)] = str(row.model)
        review_dir = review_folder(review_settings.profile, artifacts)
        try:
            scores = import_reviews(review_dir, export_id, key)
        except ReviewFileError as error:
            raise dg.Failure(
                description=f"A review file of export {export_id} is malformed:\n{error}",
                metadata={"review_dir": dg.MetadataValue.path(str(review_dir))},
            ) from error
        blank = review_file_paths(review_dir, export_id)
        how = (
            f"Open {blank['csv'].name} (or the .jsonl) in {review_dir}, score answer_a and "
            f"answer_b 1-5 in the columns {', '.join(f'{c}_a/_b' for c in REVIEW_CRITERIA)}, "
            "add a comment if useful, and save it there (in place, or as a copy whose name "
            "keeps the export id); then materialize human_review_scores again."
        )
        return dg.Output(
            HumanReviewScores.model_validate(scores.as_dict()),
            metadata={
                "reviews": scores.reviews,
                "files": ", ".join(scores.files) or "none yet",
                "review_dir": dg.MetadataValue.path(str(review_dir)),
                "export_id": export_id,
                "scores": dg.MetadataValue.json(scores.scores),
                "how_to_review": how,
            },
        )

    @dg.asset(
        group_name="evaluation",
        code_version=report_settings.code_version,
        metadata=report_settings.metadata(),
        kinds={"pytorch", "mlflow"},
    )
    def eval_report(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        qlora_adapter: Adapter,
        sft_dataset: Any,
        golden_set: pd.DataFrame,
        golden_predictions: pd.DataFrame,
        human_review_scores: HumanReviewScores,
        redteam_report: RedTeamReport,
        rag_index: RagIndex,
        fact_answers: pd.DataFrame,
    ) -> dg.Output[dict[str, Any]]:
        """Tuned vs base (and champion): perplexity on validation and golden, ROUGE-L, BLEU,
        chrF and exact match on the golden answers with paired bootstrap intervals, generation
        speed, human scores, red-team pass rates and the promotion verdict; a Markdown and an
        HTML report, logged to the adapter's MLflow run."""
        import mlflow as mlflow_client

        from llm_assets.datasets.chat_template import load_chat_tokenizer
        from llm_assets.evaluation.comparison import compare_models
        from llm_assets.evaluation.generation import ModelUnderTest
        from llm_assets.evaluation.perplexity import perplexities_of
        from llm_assets.evaluation.promotion import judge_promotion
        from llm_assets.evaluation.report import render_eval_report

        profile = report_settings.profile
        config = profile.evaluation
        models = golden_predictions[~golden_predictions["model"].str.contains("/")]
        models = models.drop_duplicates("model")
        answered = golden_predictions.loc[golden_predictions["model"] == "tuned", "pair_id"]
        by_pair = golden_set.set_index(golden_set["pair_id"].astype(str))["messages"]
        splits = {
            "validation": list(sft_dataset["validation"]["messages"])[: config.max_eval_rows],
            "golden": [by_pair[pair_id] for pair_id in answered.astype(str)],
        }
        perplexities = perplexities_of(
            [
                ModelUnderTest(
                    row.model,
                    row.base_model_path,
                    row.model_path if row.method != "none" else None,
                    row.method,
                )
                for row in models.itertuples()
            ],
            load_chat_tokenizer(qlora_adapter.path),
            {
                split: [[dict(m) for m in conversation] for conversation in conversations]
                for split, conversations in splits.items()
            },
            profile.datasets.max_length,
            config.batch_size,
        )
        served = golden_predictions[~golden_predictions["model"].str.contains("/")]
        metrics = compare_models(served, perplexities, config, metric_cache(artifacts))
        metrics |= grounding_metrics(
            golden_predictions, rag_index, fact_answers, config, metric_cache(artifacts)
        )
        metrics |= {
            "mlflow_run_id": qlora_adapter.mlflow_run_id,
            "base_model_id": qlora_adapter.base_model_id,
            "adapter_path": qlora_adapter.path,
            "method": qlora_adapter.method,
            "models": [
                {
                    "label": row.model,
                    "path": row.model_path,
                    "base_model_path": row.base_model_path,
                    "method": row.method,
                    "version": row.model_version,
                }
                for row in models.itertuples()
            ],
            "champion_skipped": str(golden_predictions["champion_skipped"].iloc[0]),
            "redteam_pass_rate": redteam_report.pass_rate,
            "redteam_categories": redteam_report.model_dump(mode="json")["categories"],
            "redteam_canary_leaks": redteam_report.canary_leaks,
            "redteam_pii_in_outputs": redteam_report.pii_in_outputs,
            "redteam_model_alone_pass_rate": redteam_report.model_alone_pass_rate,
            "redteam_declined_out_of_scope": redteam_report.declined_out_of_scope,
            "redteam_answers_with_pii_withheld": redteam_report.answers_with_pii_withheld,
            "redteam_failures": redteam_report.failures[:5],
            "human_scores": human_review_scores.scores,
            "human_counts": human_review_scores.counts,
            "human_reviews": human_review_scores.reviews,
            "review_export_id": human_review_scores.export_id,
            "review_dir": human_review_scores.review_dir,
        }
        decision = judge_promotion(metrics, profile.use_case.criteria)
        metrics["promotion"] = {
            "passed": decision.passed,
            "summary": decision.summary(),
            "criteria": decision.as_rows(),
        }
        client = mlflow.tracking().MlflowClient()
        history = [
            (int(m.step), float(m.value))
            for m in client.get_metric_history(qlora_adapter.mlflow_run_id, "loss")
        ]
        markdown, ui_markdown, page, figures = render_eval_report(metrics, history)
        with artifacts.new_folder("eval_report", context.run.run_id) as folder:
            (folder / "report.md").write_text(markdown, encoding="utf-8")
            (folder / "report.html").write_text(page, encoding="utf-8")
            for figure in figures:
                (folder / f"{figure.name}.png").write_bytes(figure.png)
            (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        report_dir = artifacts.folder("eval_report", context.run.run_id)
        value = {
            **metrics,
            "report_path": str(report_dir / "report.md"),
            "report_html_path": str(report_dir / "report.html"),
        }
        numeric = mlflow_metrics(value)
        with mlflow.start_run(context, "eval_report", run_id=qlora_adapter.mlflow_run_id) as run:
            mlflow_client.log_metrics(numeric)
            mlflow_client.log_artifacts(str(report_dir), artifact_path="eval")
        return dg.Output(
            value,
            metadata={
                "report": dg.MetadataValue.md(ui_markdown),
                "report_path": dg.MetadataValue.path(value["report_path"]),
                "report_html": dg.MetadataValue.path(value["report_html_path"]),
                "mlflow_run": dg.MetadataValue.url(mlflow.run_url(run)),
                "promotion": decision.summary(),
                **{
                    key: round(numeric[f"eval.{key}"], 4)
                    for key in ("golden_rougeL_tuned", "golden_rougeL_baseline")
                },
            },
        )

    return [golden_predictions, human_review_scores, eval_report], []


def grounding_metrics(
    predictions: pd.DataFrame,
    rag_index: RagIndex,
    fact_answers: pd.DataFrame,
    config: Any,
    cache_dir: Path,
) -> dict[str, Any]:
    """The report's grounding figures: both modes, retrieval quality, the factual questions."""
    from llm_assets.evaluation.comparison import mode_comparison

    facts: dict[str, Any] = {"questions": len(fact_answers)}
    if len(fact_answers):
        facts |= {
            "mode": str(fact_answers["mode"].iloc[0]),
            "stated": int(fact_answers["stated"].sum()),
            "stated_share": float(fact_answers["stated"].mean()),
            "in_context": int(fact_answers["chunks_with_fact"].map(len).gt(0).sum()),
            "groundedness": float(fact_answers["groundedness"].mean()),
            "rows": [
                {
                    "question": str(row.instruction),
                    "facts": list(row.facts),
                    "stated": bool(row.stated),
                    "chunks_with_fact": list(row.chunks_with_fact),
                    "answer": str(row.answer),
                }
                for row in fact_answers.itertuples()
            ],
        }
    return {
        "retrieval_modes": mode_comparison(predictions, config, cache_dir),
        "rag_index": {
            key: getattr(rag_index, key)
            for key in ("k", "recall_at_k", "mrr", "golden_queries", "chunks")
        },
        "facts": facts,
        "facts_stated_share": facts.get("stated_share", 0.0),
    }


def mlflow_metrics(value: dict[str, Any]) -> dict[str, float]:
    """The report's numbers as flat MLflow metric names: eval.<key>, eval.deltas.<name>.<part>,
    eval.human.<label>.<criterion>, eval.redteam.<category>."""
    flat: dict[str, float] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            continue
        if isinstance(item, int | float):
            flat[f"eval.{key}"] = float(item)
    for name, delta in value.get("deltas", {}).items():
        for part, number in delta.items():
            flat[f"eval.deltas.{name}.{part}"] = float(number)
    for label, scores in value.get("human_scores", {}).items():
        for criterion, number in scores.items():
            flat[f"eval.human.{label}.{criterion}"] = float(number)
    for label, entry in value.get("retrieval_modes", {}).get("models", {}).items():
        for metric in ("rougeL", "groundedness"):
            flat[f"eval.modes.{label}.{metric}"] = float(entry[metric])
    for category, entry in value.get("redteam_categories", {}).items():
        flat[f"eval.redteam.{category}.pass_rate"] = float(entry["pass_rate"])
    flat["eval.promotion_passed"] = float(bool(value.get("promotion", {}).get("passed")))
    return flat
