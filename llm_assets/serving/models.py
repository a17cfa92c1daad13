"""Which model is served: a version of the use case's registered model (the `champion` by
default, or a number or alias named on the command line), or an adapter folder given directly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_assets.evaluation.generation import ModelUnderTest

# peft's names of adapter kinds, as the `method` evaluation and training use.
_PEFT_METHODS = {"LORA": "lora", "PROMPT_TUNING": "prompt_tuning", "P_TUNING": "p_tuning"}


class ServedModelNotFound(LookupError):
    """No model can be served from what was asked; the message says what to do."""


@dataclass(frozen=True)
class ServedModel:
    """The model behind the API: its weights, the id clients send, and where it came from."""

    model: ModelUnderTest
    name: str  # the id in /v1/models and in every answer
    version: str  # the registry version, "" for a folder served directly
    source: str  # for people: "champion (version 3)", "alias challenger (version 4)", a folder
    run_id: str = ""  # the MLflow run of a registry version, where its exports are recorded
    gguf_dir: str | None = None  # a GGUF export folder given directly (serving.engine: llama-cpp)


def gguf_export_of(mlflow_module: Any, served: ServedModel, export_format: str) -> Path:
    """The folder of `served`'s `export_format` GGUF export: given directly, or recorded by
    quantized_export on the registry version's MLflow run."""
    from llm_assets.export.gguf import gguf_export_tag

    if served.gguf_dir:
        return Path(served.gguf_dir)
    recorded = ""
    if served.run_id:
        run = mlflow_module.MlflowClient().get_run(served.run_id)
        recorded = run.data.tags.get(gguf_export_tag(export_format), "")
    if not recorded or not Path(recorded).is_dir():
        raise ServedModelNotFound(
            f"{served.source} has no {export_format} export on this machine "
            f"({recorded or 'none recorded on its MLflow run'}): add {export_format} to "
            "export.formats and materialize quantized_export, pass --adapter <a GGUF export "
            "folder>, or set serving.engine: transformers"
        )
    return Path(recorded)


def version_number(wanted: str) -> str | None:
    """The version number `wanted` names ("3" or "v3"), or None when it is an alias."""
    number = wanted[1:] if wanted[:1] in ("v", "V") else wanted
    return number if number.isdigit() else None


def registry_version(mlflow_module: Any, model_name: str, wanted: str | None) -> Any:
    """The `ModelVersion` of `model_name` that `wanted` names: a number ("3" or "v3"), an alias
    ("challenger"), or None for the champion."""
    from mlflow.exceptions import MlflowException

    from llm_assets.evaluation.registry import CHAMPION

    wanted = (wanted or CHAMPION).strip()
    number = version_number(wanted)
    client = mlflow_module.MlflowClient()
    try:
        if number:
            return client.get_model_version(model_name, number)
        return client.get_model_version_by_alias(model_name, wanted)
    except MlflowException as error:
        what = f"version {number}" if number else f"alias '{wanted}'"
        hint = (
            "no version has been promoted yet: materialize through eval_report to register and "
            "promote one, or pass --model-version N or --adapter FOLDER"
            if wanted == CHAMPION
            else "list versions in the MLflow UI (make mlflow), or pass --adapter FOLDER"
        )
        raise ServedModelNotFound(
            f"registered model '{model_name}' has no {what} in {mlflow_module.get_tracking_uri()}"
            f" ({error.message}); {hint}"
        ) from None


def served_from_registry(
    mlflow_module: Any, model_name: str, wanted: str | None = None
) -> ServedModel:
    """The registry version `wanted` names (default: the champion), its adapter downloaded
    from MLflow when the folder it was registered from is not on this machine."""
    from llm_assets.evaluation.registry import version_manifest

    version = registry_version(mlflow_module, model_name, wanted)
    manifest = version_manifest(mlflow_module, version)
    if not manifest["base_model_path"] or not Path(manifest["base_model_path"]).is_dir():
        raise ServedModelNotFound(
            f"version {version.version} of '{model_name}' names base model folder "
            f"'{manifest['base_model_path']}' (tag base_model_path), which is not on this "
            "machine: copy the base model there or materialize base_model here"
        )
    if not wanted:
        source = f"champion (version {version.version})"
    elif version_number(wanted.strip()):
        source = f"version {version.version}"
    else:
        source = f"alias {wanted} (version {version.version})"
    return ServedModel(
        model=ModelUnderTest.from_adapter_manifest("served", manifest),
        name=model_name,
        version=str(version.version),
        source=source,
        run_id=str(version.run_id or ""),
    )


def served_from_folder(folder: str | Path, name: str | None = None) -> ServedModel:
    """An adapter folder (its base model read from adapter_config.json), a complete model
    folder, or a GGUF export folder (model.gguf and its tokenizer), served without the
    registry."""
    path = Path(folder).resolve()
    adapter_config = path / "adapter_config.json"
    if (path / "model.gguf").is_file():
        model = ModelUnderTest("served", str(path))
        return ServedModel(model, name or path.name, "", str(path), gguf_dir=str(path))
    if adapter_config.is_file():
        config = json.loads(adapter_config.read_text(encoding="utf-8"))
        base = str(config.get("base_model_name_or_path") or "")
        if not Path(base).is_dir():
            raise ServedModelNotFound(
                f"{adapter_config}: base_model_name_or_path '{base}' is not a folder on this "
                "machine; serve a registered version instead (--model-version), or put the base "
                "model there"
            )
        method = _PEFT_METHODS.get(str(config.get("peft_type", "LORA")).upper(), "lora")
        model = ModelUnderTest("served", base, str(path), method)
    elif (path / "config.json").is_file():
        model = ModelUnderTest("served", str(path))
    else:
        raise ServedModelNotFound(
            f"{path} holds neither adapter_config.json (an adapter), config.json (a model) nor "
            "model.gguf (a GGUF export); pass the folder of a qlora_adapter materialization "
            "(var/artifacts/qlora_adapter/…)"
        )
    return ServedModel(model=model, name=name or path.name, version="", source=str(path))
