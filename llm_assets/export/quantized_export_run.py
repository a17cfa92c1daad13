"""The `quantized_export` step: one quantized copy of the merged model per format, each loaded
back from disk and measured on the same golden conversations as the merged model, with the
deltas recorded in the merged model's MLflow run."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from llm_assets.contracts import ExportedCopies, MergedModel
from llm_assets.export.config import ExportConfig
from llm_assets.settings import GenerationConfig
from llm_assets.stage_output import ArtifactFolders, StageOutput, StartMlflowRun
from llm_assets.storage import folder_digest

if TYPE_CHECKING:
    from datasets import DatasetDict

    from llm_assets.export.quantize import ExportMeasurement, Reference

ASSET = "quantized_export"
MERGED = "merged-fp32"
# Golden conversations the chat-template check renders and tokenizes.
CHECK_ROWS = 16
MLFLOW_METRICS = (
    "size_mb",
    "load_seconds",
    "tokens_per_second",
    "perplexity",
    "perplexity_delta",
    "golden_rouge_l",
    "golden_rouge_l_delta",
)

AnswerScorer = Callable[[list[str], list[str]], float]


def run_quantized_export(
    merged_model: MergedModel,
    golden_set: pd.DataFrame,
    sft_dataset: DatasetDict,
    *,
    config: ExportConfig,
    generation: GenerationConfig,
    max_length: int,
    system_prompt: str | None,
    model_kind: str,
    metric_cache: Path,
    folders: ArtifactFolders,
    run_id: str,
    start_mlflow_run: StartMlflowRun,
    log: Callable[[str], None],
) -> StageOutput[ExportedCopies]:
    """Each of `config.formats` written into the `quantized_export` folder of `run_id` and
    measured against `merged_model` (GGUF formats through llama.cpp). Raises
    `ExportUnavailable` when a format cannot be made on this machine."""
    from llm_assets.evaluation.metrics import load_metric
    from llm_assets.export.quantize import Reference, measure_export

    conversations = golden_conversations(golden_set, config.measure_rows)
    rouge = load_metric("rouge", metric_cache)

    def golden_rouge_l(answers: list[str], references: list[str]) -> float:
        return float(rouge.compute(predictions=answers, references=references)["rougeL"])

    merged_dir = Path(merged_model.path)
    calibration = calibration_texts(merged_dir, sft_dataset, config.calibration_rows)
    merged = measure_export(
        merged_dir, MERGED, conversations, max_length, generation, golden_rouge_l
    )
    exported = write_and_measure_exports(
        merged_dir,
        config.formats,
        calibration,
        conversations,
        max_length=max_length,
        generation=generation,
        system_prompt=system_prompt,
        # A tokenizer trained here is one llama.cpp has no hash for.
        default_pre=model_kind == "tiny",
        score_answers=golden_rouge_l,
        reference=Reference(merged.perplexity, merged.golden_rouge_l),
        folders=folders,
        run_id=run_id,
        log=log,
    )
    final = folders.folder(ASSET, run_id)
    table = exports_table([merged, *exported], merged_dir, final)
    shown = table.drop(columns=["path"])
    (final / "README.md").write_text(exports_readme(shown, len(conversations)), encoding="utf-8")
    with start_mlflow_run(ASSET, merged_model.mlflow_run_id):
        log_exports_to_mlflow(table, shown)
    copies = ExportedCopies(
        path=str(final),
        merged_path=str(merged_dir),
        exports=table.to_dict("records"),
        weights_digest=folder_digest(final),
    )
    return StageOutput(copies, {"exports": shown, "path": final}, copies.weights_digest)


def golden_conversations(golden_set: pd.DataFrame, rows: int) -> list[list[dict[str, str]]]:
    """The first `rows` golden conversations, as lists of message dicts."""
    return [[dict(message) for message in messages] for messages in golden_set["messages"][:rows]]


def calibration_texts(merged_dir: Path, sft_dataset: DatasetDict, rows: int) -> list[str]:
    """The first `rows` validation conversations rendered with the merged model's template:
    what GPTQ/AWQ calibrate on."""
    from transformers import AutoTokenizer

    from llm_assets.datasets.chat_template import render_chat

    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    return [
        render_chat(tokenizer, [dict(m) for m in messages])
        for messages in sft_dataset["validation"]["messages"][:rows]
    ]


def write_and_measure_exports(
    merged_dir: Path,
    formats: Sequence[str],
    calibration: list[str],
    conversations: list[list[dict[str, str]]],
    *,
    max_length: int,
    generation: GenerationConfig,
    system_prompt: str | None,
    default_pre: bool,
    score_answers: AnswerScorer,
    reference: Reference,
    folders: ArtifactFolders,
    run_id: str,
    log: Callable[[str], None],
) -> list[ExportMeasurement]:
    """Each format written into its folder of the run's `quantized_export` folder, and
    measured from there against `reference` (the merged model's figures)."""
    from llm_assets.export.gguf import GGUF_FORMATS, measure_gguf_export, write_gguf_export
    from llm_assets.export.quantize import QUANTIZERS, measure_export

    measurements = []
    with (
        folders.new_folder(ASSET, run_id) as folder,
        tempfile.TemporaryDirectory(prefix="gguf-f16-") as work,
    ):
        # The merged model is converted to f16 GGUF once; every GGUF format starts there.
        f16_file = Path(work) / "merged-f16.gguf"
        for export_format in formats:
            log(f"quantizing to {export_format}")
            if export_format in GGUF_FORMATS:
                write_gguf_export(
                    merged_dir,
                    folder / export_format,
                    export_format,
                    f16_file,
                    system_prompt,
                    generation.repetition_penalty,
                    default_pre=default_pre,
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
                    score_answers,
                    reference,
                )
            )
    return measurements


def exports_table(
    measurements: Sequence[ExportMeasurement], merged_dir: Path, final: Path
) -> pd.DataFrame:
    """One row per measurement; `path` is where each copy is once the folder is in place."""
    table = pd.DataFrame([m.as_row() for m in measurements])
    table["path"] = [
        str(merged_dir if m.format == MERGED else final / m.format) for m in measurements
    ]
    return table


def exports_readme(shown: pd.DataFrame, conversations: int) -> str:
    return (
        "# Quantized exports\n\nEach re-loaded from its folder and measured on "
        f"{conversations} golden conversations against the merged model.\n\n"
        + shown.to_markdown(index=False, floatfmt=".4g")
        + "\n"
    )


def log_exports_to_mlflow(table: pd.DataFrame, shown: pd.DataFrame) -> None:
    """Each export's figures as metrics of the open run, the table as a run table, and the
    GGUF files as tags."""
    import mlflow

    from llm_assets.export.gguf import GGUF_FORMATS, gguf_export_tag

    for row in table.to_dict("records"):
        mlflow.log_metrics(
            {f"export.{row['format']}.{name}": float(row[name]) for name in MLFLOW_METRICS}
        )
    mlflow.log_table(shown, artifact_file="export/quantized_exports.json")
    # Where `llm-assets serve` (serving.engine: llama-cpp) finds a version's GGUF file.
    for row in table.to_dict("records"):
        if row["format"] in GGUF_FORMATS:
            mlflow.set_tag(gguf_export_tag(row["format"]), row["path"])


def export_template_differences(
    exports: Sequence[dict[str, Any]], adapter_path: str, conversations: list[list[dict[str, str]]]
) -> dict[str, list[str]]:
    """Per export (the merged model included), where it renders or tokenizes `conversations`
    otherwise than the tokenizer saved with the adapter; [] where nowhere."""
    from transformers import AutoTokenizer

    from llm_assets.datasets.chat_template import template_differences
    from llm_assets.export.gguf import GGUF_FORMATS, tokenizer_with_gguf_template

    trained = AutoTokenizer.from_pretrained(adapter_path)
    return {
        str(row["format"]): template_differences(
            trained,
            # A GGUF export is checked on the template inside the file, which is what
            # llama.cpp reads, over the training tokenizer's vocabulary.
            tokenizer_with_gguf_template(adapter_path, Path(str(row["path"])))
            if row["format"] in GGUF_FORMATS
            else AutoTokenizer.from_pretrained(str(row["path"])),
            conversations,
        )
        for row in exports
    }
