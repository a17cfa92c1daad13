"""The `base_model` step: the model fine-tuning starts from, as a local folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from llm_assets.contracts import BaseModelFolder, Scalar
from llm_assets.settings import ModelConfig
from llm_assets.stage_output import ArtifactFolders, StageOutput

ASSET = "base_model"


def run_base_model(
    model: ModelConfig,
    seed: int,
    base_dir: Path,
    cleaned_corpus: pd.DataFrame,
    folders: ArtifactFolders,
    run_id: str,
) -> StageOutput[BaseModelFolder]:
    """The folder of `model`: a pretrained one where it already is; a GGUF file (`base_dir`
    locates a relative one) dequantized into a new folder; or a tiny Llama pre-trained with
    `seed` on `cleaned_corpus` (texts with their responses) into a new folder."""
    from llm_assets.training.base_model import (
        build_tiny_base_model,
        count_parameters,
        resolve_pretrained,
        weights_identity,
    )

    made: dict[str, dict[str, Scalar]] = {}
    if model.kind == "pretrained":
        path = resolve_pretrained(model)
    elif model.kind == "gguf":
        from llm_assets.training.gguf import convert_gguf_to_folder, resolve_gguf_file

        gguf_path = resolve_gguf_file(model.id_or_path, base_dir)
        with folders.new_folder(ASSET, run_id) as folder:
            conversion = convert_gguf_to_folder(gguf_path, folder)
        path = str(folders.folder(ASSET, run_id))
        made["gguf"] = conversion.__dict__
    else:
        texts = pretraining_texts(cleaned_corpus)
        with folders.new_folder(ASSET, run_id) as folder:
            summary = build_tiny_base_model(texts, model.tiny, folder, seed=seed)
        path = str(folders.folder(ASSET, run_id))
        made["pretrain"] = summary.__dict__
    folder_made = BaseModelFolder(
        kind=model.kind,
        model_id=model.id_or_path,
        revision=model.revision,
        license=model.license,
        path=path,
        parameters=count_parameters(path),
        weights_digest=weights_identity(path),
        **made,
    )
    return StageOutput(folder_made, base_model_report(folder_made), folder_made.weights_digest)


def pretraining_texts(cleaned_corpus: pd.DataFrame) -> list[str]:
    """Each record's text, followed by its response where it has one."""
    return [
        f"{text}\n\n{response}" if isinstance(response, str) else text
        for text, response in zip(cleaned_corpus["text"], cleaned_corpus["response"], strict=True)
    ]


def base_model_report(folder: BaseModelFolder) -> dict[str, object]:
    return {
        "path": Path(folder.path),
        "parameters": folder.parameters or "unknown (not safetensors)",
        "model_id": folder.model_id,
        "license": folder.license,
        **{f"pretrain_{k}": v for k, v in folder.pretrain.items()},
        **{f"gguf_{k}": v for k, v in folder.gguf.items()},
    }
