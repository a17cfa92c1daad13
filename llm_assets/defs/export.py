"""Group `export`: the adapter merged into its base, then quantized copies, each re-loaded and
measured against the merged model."""

from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import Adapter, ExportedCopies, MergedModel
from llm_assets.defs.evaluation import metric_cache
from llm_assets.defs.resources import ArtifactStoreResource, MlflowResource
from llm_assets.settings import Profile
from llm_assets.storage import folder_digest, folder_size

CHECK_ROWS = 16


def build_export_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    config = profile.export
    # The merged model card names the use case and the license.
    merged_settings = AssetSettings(
        profile,
        "merged_model",
        reads=["model.license", "use_case.name"],
        code=["export/merge.py", "defs/export.py"],
    )
    export_settings = AssetSettings(
        profile,
        "quantized_export",
        reads=[
            "export",
            "evaluation.generation",
            "datasets.system_prompt",
            "datasets.max_length",
            "model.kind",
        ],
        code=["export", "defs/export.py"],
    )

    @dg.asset(
        group_name="export",
        code_version=merged_settings.code_version,
        metadata=merged_settings.metadata(),
        kinds={"pytorch", "safetensors"},
    )
    def merged_model(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        qlora_adapter: Adapter,
    ) -> dg.Output[MergedModel]:
        """The adapter folded into its full-precision base: one safetensors model with the
        training tokenizer and chat template, and a model card naming where it came from."""
        from llm_assets.export.merge import CannotMerge, merge_adapter, model_card

        profile = merged_settings.profile
        name = f"{profile.use_case.name} ({qlora_adapter.method}, merged)"
        card = model_card(qlora_adapter, profile.model.license, name)
        try:
            with artifacts.new_folder("merged_model", context.run.run_id) as folder:
                merge_adapter(
                    qlora_adapter.base_model_path,
                    qlora_adapter.path,
                    qlora_adapter.method,
                    folder,
                )
                (folder / "README.md").write_text(card, encoding="utf-8")
        except CannotMerge as error:
            raise dg.Failure(str(error)) from error
        path = artifacts.folder("merged_model", context.run.run_id)
        merged = MergedModel(
            path=str(path),
            weights_digest=folder_digest(path),
            base_model_id=qlora_adapter.base_model_id,
            base_model_path=qlora_adapter.base_model_path,
            method=qlora_adapter.method,
            mlflow_run_id=qlora_adapter.mlflow_run_id,
            adapter_weights_digest=qlora_adapter.weights_digest,
            license=profile.model.license,
            name=name,
        )
        return dg.Output(
            merged,
            data_version=dg.DataVersion(merged.weights_digest),
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "base_model": merged.base_model_id,
                "method": merged.method,
                "size_mb": round(folder_size(path) / 2**20, 2),
            },
        )

    @dg.asset(
        group_name="export",
        code_version=export_settings.code_version,
        metadata=export_settings.metadata(),
        kinds={"pytorch", "mlflow", "gguf"},
    )
    def quantized_export(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        merged_model: MergedModel,
        golden_set: pd.DataFrame,
        sft_dataset: Any,
    ) -> dg.Output[ExportedCopies]:
        """One quantized copy per `export.formats`. Each is loaded back from disk and measured
        on the same golden conversations as the merged model: size, load time, tokens/s,
        perplexity and golden ROUGE-L, and their deltas, so a copy that answers worse shows it.
        GGUF copies (llama.cpp) are measured through llama.cpp, with the same tokens."""
        import tempfile
        from collections.abc import Callable
        from pathlib import Path

        import mlflow as mlflow_client

        from llm_assets.datasets.chat_template import render_chat
        from llm_assets.evaluation.metrics import load_metric
        from llm_assets.export.gguf import (
            GGUF_FORMATS,
            gguf_export_tag,
            measure_gguf_export,
            write_gguf_export,
        )
        from llm_assets.export.quantize import (
            QUANTIZERS,
            ExportMeasurement,
            ExportUnavailable,
            Reference,
            measure_export,
        )

        profile = export_settings.profile
        config = profile.export
        conversations = [
            [dict(message) for message in messages]
            for messages in golden_set["messages"][: config.measure_rows]
        ]
        rouge = load_metric("rouge", metric_cache(artifacts))

        def golden_rouge_l(answers: list[str], references: list[str]) -> float:
            return float(rouge.compute(predictions=answers, references=references)["rougeL"])

        merged_dir = Path(merged_model.path)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(merged_dir)
        calibration = [
            render_chat(tokenizer, [dict(m) for m in messages])
            for messages in sft_dataset["validation"]["messages"][: config.calibration_rows]
        ]
        generation = profile.evaluation.generation
        max_length = profile.datasets.max_length
        merged = measure_export(
            merged_dir, "merged-fp32", conversations, max_length, generation, golden_rouge_l
        )
        reference = Reference(merged.perplexity, merged.golden_rouge_l)
        measurements = [merged]
        try:
            with (
                artifacts.new_folder("quantized_export", context.run.run_id) as folder,
                tempfile.TemporaryDirectory(prefix="gguf-f16-") as work,
            ):
                # The merged model is converted to f16 GGUF once; every GGUF format starts there.
                f16_file = Path(work) / "merged-f16.gguf"
                for export_format in config.formats:
                    context.log.info(f"quantizing to {export_format}")
                    if export_format in GGUF_FORMATS:
                        write_gguf_export(
                            merged_dir,
                            folder / export_format,
                            export_format,
                            f16_file,
                            profile.datasets.system_prompt,
                            generation.repetition_penalty,
                            # A tokenizer trained here is one llama.cpp has no hash for.
                            default_pre=profile.model.kind == "tiny",
                        )
                        measure: Callable[..., ExportMeasurement] = measure_gguf_export
                    else:
                        QUANTIZERS[export_format](merged_dir, folder / export_format, calibration)
                        measure = measure_export
                    measurements.append(
                        measure(
                            folder / export_format,
                            export_format,
                            conversations,
                            max_length,
                            generation,
                            golden_rouge_l,
                            reference,
                        )
                    )
        except ExportUnavailable as error:
            raise dg.Failure(str(error)) from error
        final = artifacts.folder("quantized_export", context.run.run_id)
        table = pd.DataFrame([m.as_row() for m in measurements])
        table["path"] = [
            str(merged_dir if m.format == "merged-fp32" else final / m.format) for m in measurements
        ]
        shown = table.drop(columns=["path"])
        (final / "README.md").write_text(
            "# Quantized exports\n\nEach re-loaded from its folder and measured on "
            f"{len(conversations)} golden conversations against the merged model.\n\n"
            + shown.to_markdown(index=False, floatfmt=".4g")
            + "\n",
            encoding="utf-8",
        )
        with mlflow.start_run(context, "quantized_export", run_id=merged_model.mlflow_run_id):
            for row in table.to_dict("records"):
                mlflow_client.log_metrics(
                    {
                        f"export.{row['format']}.{name}": float(row[name])
                        for name in (
                            "size_mb",
                            "load_seconds",
                            "tokens_per_second",
                            "perplexity",
                            "perplexity_delta",
                            "golden_rouge_l",
                            "golden_rouge_l_delta",
                        )
                    }
                )
            mlflow_client.log_table(shown, artifact_file="export/quantized_exports.json")
            # Where `llm-assets serve` (serving.engine: llama-cpp) finds a version's GGUF file.
            for row in table.to_dict("records"):
                if row["format"] in GGUF_FORMATS:
                    mlflow_client.set_tag(gguf_export_tag(row["format"]), row["path"])
        copies = ExportedCopies(
            path=str(final),
            merged_path=str(merged_dir),
            exports=table.to_dict("records"),
            weights_digest=folder_digest(final),
        )
        return dg.Output(
            copies,
            data_version=dg.DataVersion(copies.weights_digest),
            metadata={
                "exports": dg.MetadataValue.md(shown.to_markdown(index=False, floatfmt=".4g")),
                "path": dg.MetadataValue.path(str(final)),
            },
        )

    @dg.asset_check(
        asset=quantized_export,
        additional_ins={"qlora_adapter": dg.AssetIn("qlora_adapter"), "golden_set": dg.AssetIn()},
        blocking=True,
        description="The merged model and every export carry the chat template the adapter was "
        "trained with.",
    )
    def quantized_export_keeps_training_chat_template(
        quantized_export: ExportedCopies, qlora_adapter: Adapter, golden_set: pd.DataFrame
    ) -> dg.AssetCheckResult:
        from pathlib import Path

        from transformers import AutoTokenizer

        from llm_assets.datasets.chat_template import template_differences
        from llm_assets.export.gguf import GGUF_FORMATS, tokenizer_with_gguf_template

        rows = [[dict(m) for m in messages] for messages in golden_set["messages"][:CHECK_ROWS]]
        trained = AutoTokenizer.from_pretrained(qlora_adapter.path)
        problems = {
            str(row["format"]): template_differences(
                trained,
                # A GGUF export is checked on the template inside the file, which is what
                # llama.cpp reads, over the training tokenizer's vocabulary.
                tokenizer_with_gguf_template(qlora_adapter.path, Path(str(row["path"])))
                if row["format"] in GGUF_FORMATS
                else AutoTokenizer.from_pretrained(str(row["path"])),
                rows,
            )
            for row in quantized_export.exports
        }
        return dg.AssetCheckResult(
            passed=not any(problems.values()),
            description=", ".join(f"{fmt}: {len(p)} differences" for fmt, p in problems.items()),
            metadata={"differences": dg.MetadataValue.json(problems)},
        )

    @dg.asset_check(
        asset=quantized_export,
        description="No export answers the golden set much worse than the merged model: "
        "perplexity and ROUGE-L within export.max_perplexity_increase / max_rouge_l_drop.",
    )
    def quantized_export_answers_like_merged_model(
        quantized_export: ExportedCopies,
    ) -> dg.AssetCheckResult:
        from llm_assets.export.quantize import exports_answering_worse

        worse = exports_answering_worse(
            quantized_export.exports, config.max_perplexity_increase, config.max_rouge_l_drop
        )
        return dg.AssetCheckResult(
            passed=not worse,
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(worse) or "every export within tolerance of the merged model",
            metadata={"exports_answering_worse": len(worse)},
        )

    return (
        [merged_model, quantized_export],
        [quantized_export_keeps_training_chat_template, quantized_export_answers_like_merged_model],
    )
