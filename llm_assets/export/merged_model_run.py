"""The `merged_model` step: the adapter folded into its full-precision base, with a model card."""

from __future__ import annotations

from llm_assets.contracts import Adapter, MergedModel
from llm_assets.export.merge import merge_adapter, model_card
from llm_assets.stage_output import ArtifactFolders, StageOutput
from llm_assets.storage import folder_digest, folder_size

ASSET = "merged_model"


def run_merge(
    adapter: Adapter, license: str, use_case_name: str, folders: ArtifactFolders, run_id: str
) -> StageOutput[MergedModel]:
    """`adapter` merged into its base in the `merged_model` folder of `run_id`, with a model
    card naming the use case and `license`. Raises `CannotMerge` for a prompt method."""
    name = f"{use_case_name} ({adapter.method}, merged)"
    card = model_card(adapter, license, name)
    with folders.new_folder(ASSET, run_id) as folder:
        merge_adapter(adapter.base_model_path, adapter.path, adapter.method, folder)
        (folder / "README.md").write_text(card, encoding="utf-8")
    path = folders.folder(ASSET, run_id)
    merged = MergedModel(
        path=str(path),
        weights_digest=folder_digest(path),
        base_model_id=adapter.base_model_id,
        base_model_path=adapter.base_model_path,
        method=adapter.method,
        mlflow_run_id=adapter.mlflow_run_id,
        adapter_weights_digest=adapter.weights_digest,
        license=license,
        name=name,
    )
    report: dict[str, object] = {
        "path": path,
        "base_model": merged.base_model_id,
        "method": merged.method,
        "size_mb": round(folder_size(path) / 2**20, 2),
    }
    return StageOutput(merged, report, merged.weights_digest)
