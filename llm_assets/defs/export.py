"""Group `export`: the adapter merged into its base, quantized, re-loaded and measured."""

from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.defs.resources import ArtifactStoreResource, MlflowResource
from llm_assets.settings import Profile, section_digest
from llm_assets.storage import folder_digest

EXPORT_CODE_VERSION = "1"


def build_export_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    config = profile.export

    @dg.asset(
        group_name="export",
        code_version=f"{EXPORT_CODE_VERSION}-{section_digest(config)}",
        kinds={"pytorch", "safetensors"},
    )
    def quantized_export(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        qlora_adapter: dict[str, Any],
        golden_set: pd.DataFrame,
    ) -> dg.Output[dict[str, Any]]:
        """Merged model plus one quantized copy per `export.formats`; each re-loaded from disk and
        scored on the golden set, so a copy that answers worse shows it."""
        import mlflow as mlflow_client

        from llm_assets.export.quantize import QUANTIZERS, measure_model, merge_adapter

        conversations = [
            [dict(message) for message in messages]
            for messages in golden_set["messages"][: profile.evaluation.max_eval_rows]
        ]
        max_length = profile.datasets.max_length
        with artifacts.new_folder("quantized_export", context.run.run_id) as folder:
            merged_dir = folder / "merged"
            if qlora_adapter["method"] == "full":
                import shutil

                shutil.copytree(qlora_adapter["path"], merged_dir)
            else:
                merge_adapter(qlora_adapter["base_model_path"], qlora_adapter["path"], merged_dir)
            merged = measure_model(merged_dir, conversations, max_length, None, "merged-fp32")
            measurements = [merged]
            for export_format in config.formats:
                export_dir = folder / export_format
                QUANTIZERS[export_format](merged_dir, export_dir)
                measurements.append(
                    measure_model(
                        export_dir, conversations, max_length, merged.perplexity, export_format
                    )
                )
        final = artifacts.folder("quantized_export", context.run.run_id)
        table = pd.DataFrame([m.as_row() for m in measurements])
        table["path"] = [
            str(final / ("merged" if m.format == "merged-fp32" else m.format)) for m in measurements
        ]
        with mlflow.start_run(context, "quantized_export", run_id=qlora_adapter["mlflow_run_id"]):
            for row in table.to_dict("records"):
                mlflow_client.log_metrics(
                    {
                        f"export.{row['format']}.size_mb": row["size_bytes"] / 2**20,
                        f"export.{row['format']}.perplexity": row["perplexity"],
                        f"export.{row['format']}.perplexity_delta": row["perplexity_delta"],
                    }
                )
        manifest = {
            "path": str(final),
            "exports": table.to_dict("records"),
            "weights_digest": folder_digest(final),
        }
        return dg.Output(
            manifest,
            data_version=dg.DataVersion(manifest["weights_digest"]),
            metadata={
                "exports": dg.MetadataValue.md(
                    table.drop(columns=["path"]).to_markdown(index=False)
                ),
                "path": dg.MetadataValue.path(str(final)),
            },
        )

    @dg.asset_check(
        asset=quantized_export,
        additional_ins={"qlora_adapter": dg.AssetIn("qlora_adapter"), "golden_set": dg.AssetIn()},
        blocking=True,
        description="Every export carries the chat template the adapter was trained with.",
    )
    def quantized_export_keeps_training_chat_template(
        quantized_export: dict[str, Any], qlora_adapter: dict[str, Any], golden_set: pd.DataFrame
    ) -> dg.AssetCheckResult:
        from transformers import AutoTokenizer

        from llm_assets.datasets.chat_template import template_differences

        rows = [[dict(m) for m in messages] for messages in golden_set["messages"][:16]]
        trained = AutoTokenizer.from_pretrained(qlora_adapter["path"])
        problems = {
            row["format"]: template_differences(
                trained, AutoTokenizer.from_pretrained(row["path"]), rows
            )
            for row in quantized_export["exports"]
        }
        return dg.AssetCheckResult(
            passed=not any(problems.values()),
            description=", ".join(f"{fmt}: {len(p)} differences" for fmt, p in problems.items()),
            metadata={"differences": dg.MetadataValue.json(problems)},
        )

    return [quantized_export], [quantized_export_keeps_training_chat_template]
