"""Group `evaluation`: the tuned model against its base, on the same held-out conversations."""

from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.defs.resources import ArtifactStoreResource, MlflowResource
from llm_assets.settings import Profile, section_digest

EVAL_CODE_VERSION = "1"


def build_evaluation_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    config = profile.evaluation

    @dg.asset(
        group_name="evaluation",
        code_version=f"{EVAL_CODE_VERSION}-{section_digest(config)}",
        kinds={"pytorch", "mlflow"},
    )
    def eval_report(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        qlora_adapter: dict[str, Any],
        sft_dataset: Any,
        golden_set: pd.DataFrame,
    ) -> dg.Output[dict[str, Any]]:
        """Answer perplexity of base and tuned model on validation and golden set; a report."""
        import mlflow as mlflow_client
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from llm_assets.evaluation.perplexity import perplexity
        from llm_assets.evaluation.report import render_eval_report

        conversations = {
            "validation": list(sft_dataset["validation"]["messages"])[: config.max_eval_rows],
            "golden": list(golden_set["messages"])[: config.max_eval_rows],
        }
        conversations["golden"] = [
            list(map(dict, messages)) for messages in conversations["golden"]
        ]
        tokenizer = AutoTokenizer.from_pretrained(qlora_adapter["path"])
        base = AutoModelForCausalLM.from_pretrained(
            qlora_adapter["base_model_path"], dtype=torch.float32
        )
        metrics: dict[str, Any] = {"rows": {}, "mlflow_run_id": qlora_adapter["mlflow_run_id"]}
        for split, rows in conversations.items():
            result = perplexity(
                base, tokenizer, rows, profile.datasets.max_length, config.batch_size
            )
            metrics[f"{split}_perplexity_base"] = result.perplexity
            metrics[f"{split}_tokens"] = result.tokens
            metrics["rows"][split] = result.rows
        if qlora_adapter["method"] == "full":
            tuned = AutoModelForCausalLM.from_pretrained(qlora_adapter["path"], dtype=torch.float32)
        else:
            tuned = PeftModel.from_pretrained(base, qlora_adapter["path"])
        for split, rows in conversations.items():
            result = perplexity(
                tuned, tokenizer, rows, profile.datasets.max_length, config.batch_size
            )
            metrics[f"{split}_perplexity_tuned"] = result.perplexity

        report = render_eval_report(metrics, qlora_adapter["base_model_id"], qlora_adapter["path"])
        with artifacts.new_folder("eval_report", context.run.run_id) as folder:
            (folder / "report.md").write_text(report, encoding="utf-8")
        report_path = artifacts.folder("eval_report", context.run.run_id) / "report.md"
        numeric = {k: v for k, v in metrics.items() if isinstance(v, float)}
        with mlflow.start_run(context, "eval_report", run_id=qlora_adapter["mlflow_run_id"]) as run:
            mlflow_client.log_metrics({f"eval.{k}": v for k, v in numeric.items()})
            mlflow_client.log_artifact(str(report_path), artifact_path="eval")
        value = {**metrics, "report_path": str(report_path)}
        return dg.Output(
            value,
            metadata={
                "report": dg.MetadataValue.md(report),
                "report_path": dg.MetadataValue.path(str(report_path)),
                "mlflow_run": dg.MetadataValue.url(mlflow.run_url(run)),
                **{k: round(v, 4) for k, v in numeric.items()},
            },
        )

    return [eval_report], []
