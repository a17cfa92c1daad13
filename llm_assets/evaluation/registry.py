"""The MLflow Model Registry: adapters as versions of a use case's registered model.

A version carries what it takes to load it again: tags naming its base model (path and id), the
fine-tuning method, the adapter folder it was registered from and its weights digest, and the
Dagster and MLflow runs that made it. Aliases say which version plays which role: `challenger`
is the latest candidate, `champion` the one in service. Every function takes the `mlflow` module
already pointed at the store (`MlflowResource.tracking()`), so tests use a local SQLite store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_assets.contracts import Adapter
from llm_assets.rag.context import CONTEXT_FORMAT_FILE
from llm_assets.serving.guardrails import SCOPE_CALIBRATION_FILE, scope_calibration_tag

CHALLENGER = "challenger"
CHAMPION = "champion"
# Files that mark a folder as loadable: an adapter (peft) or a complete model (full fine-tune).
_MODEL_MARKERS = ("adapter_config.json", "config.json")


def adapter_source_uri(adapter: Adapter) -> str:
    """What a version is registered from: the MLflow model logged with the adapter when there is
    one, else the adapter folder logged as artifacts of the training run."""
    if adapter.mlflow_model_uri:
        return adapter.mlflow_model_uri
    return f"runs:/{adapter.mlflow_run_id}/adapter"


# Files beside an adapter that say how it must be asked, written by qlora_adapter after the
# MLflow model was logged: each travels in a version tag, for a copy downloaded without it.
CARRIED_FILES = {
    "retrieval_context": CONTEXT_FORMAT_FILE,
    "scope_calibration": SCOPE_CALIBRATION_FILE,
}


def context_format_text(folder: str) -> str:
    """The adapter folder's retrieval context format file, as text ("" for none)."""
    path = Path(folder) / CONTEXT_FORMAT_FILE
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def restore_carried_files(folder: Path, tags: dict[str, str]) -> None:
    """Write the files recorded in a version's tags into a downloaded copy."""
    for tag, name in CARRIED_FILES.items():
        text = tags.get(tag, "")
        if text and not (folder / name).is_file():
            (folder / name).write_text(text, encoding="utf-8")


def version_tags(adapter: Adapter, dagster_run_id: str = "") -> dict[str, str]:
    """The tags that tie a version to its base model, its weights and the runs that made it."""
    return {
        "base_model_path": adapter.base_model_path,
        "base_model_id": adapter.base_model_id,
        "method": adapter.method,
        "adapter_path": adapter.path,
        "weights_digest": adapter.weights_digest,
        "mlflow_run_id": adapter.mlflow_run_id,
        "dagster_run_id": dagster_run_id,
        # How it must be asked (retrieved context, scope guard), for a copy downloaded
        # without the files.
        "retrieval_context": context_format_text(adapter.path),
        "scope_calibration": scope_calibration_tag(adapter.path),
    }


def register_adapter(
    mlflow_module: Any,
    model_name: str,
    adapter: Adapter,
    dagster_run_id: str = "",
    description: str = "",
) -> tuple[Any, bool]:
    """Register `adapter` (a `qlora_adapter` value) as a new version of
    `model_name`, creating the registered model if needed. Returns (ModelVersion, created):
    when a version with the same weights digest exists already, that one, and created=False."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    client = mlflow_module.MlflowClient()
    existing = versions_with_digest(mlflow_module, model_name, adapter.weights_digest)
    if existing:
        return existing[0], False
    try:
        client.create_registered_model(model_name, description=description or None)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    tags = version_tags(adapter, dagster_run_id)
    source = adapter_source_uri(adapter)
    if not adapter.mlflow_model_uri:
        # The adapter folder is plain run artifacts, not a logged MLflow model, which
        # `mlflow.register_model` refuses; a version may still point at any artifact location.
        version = client.create_model_version(
            model_name, source=source, run_id=adapter.mlflow_run_id, tags=tags
        )
    else:
        version = mlflow_module.register_model(source, model_name, tags=tags)
    return version, True


def versions_with_digest(mlflow_module: Any, model_name: str, weights_digest: str) -> list[Any]:
    """Versions of `model_name` registered from weights with this digest, oldest first."""
    client = mlflow_module.MlflowClient()
    found = client.search_model_versions(
        f"name = '{_quoted(model_name)}' and tag.weights_digest = '{_quoted(weights_digest)}'"
    )
    return sorted(found, key=lambda version: int(version.version))


def set_alias(mlflow_module: Any, model_name: str, alias: str, version: str | int) -> None:
    """Point `alias` at `version` (moving it from whichever version held it)."""
    mlflow_module.MlflowClient().set_registered_model_alias(model_name, alias, str(version))


def version_by_alias(mlflow_module: Any, model_name: str, alias: str) -> Any | None:
    """The version holding `alias`, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    client = mlflow_module.MlflowClient()
    try:
        registered = client.get_registered_model(model_name)
    except MlflowException:
        return None
    if alias not in (registered.aliases or {}):
        return None
    return client.get_model_version_by_alias(model_name, alias)


def list_versions(mlflow_module: Any, model_name: str) -> list[dict[str, Any]]:
    """Every version of `model_name`, newest first, as rows: version, aliases, tags, run id,
    creation time; an empty list when the model is not registered."""
    from mlflow.exceptions import MlflowException

    client = mlflow_module.MlflowClient()
    try:
        registered = client.get_registered_model(model_name)
    except MlflowException:  # not registered yet: no versions and no aliases
        return []
    aliases: dict[str, list[str]] = {}
    for alias, number in (registered.aliases or {}).items():
        aliases.setdefault(str(number), []).append(alias)
    versions = client.search_model_versions(f"name = '{_quoted(model_name)}'")
    rows = [
        {
            "version": int(version.version),
            "aliases": sorted(aliases.get(str(version.version), [])),
            "run_id": version.run_id,
            "source": version.source,
            "created": version.creation_timestamp,
            **dict(version.tags or {}),
        }
        for version in versions
    ]
    return sorted(rows, key=lambda row: -row["version"])


def version_manifest(
    mlflow_module: Any, version: Any, download_root: Path | None = None
) -> dict[str, Any]:
    """An adapter manifest (path, base_model_path, base_model_id, method, version,
    mlflow_run_id, weights_digest) for a registered version. When the folder it was registered
    from is gone (another machine, a cleaned state dir), the version's artifacts are downloaded
    under `download_root` (default: <state dir>/registry) and `path` points there."""
    tags = dict(version.tags or {})
    path = tags.get("adapter_path", "")
    if not (path and _is_model_folder(Path(path))):
        path = str(download_version(mlflow_module, version, download_root))
        restore_carried_files(Path(path), tags)
    return {
        "path": path,
        "base_model_path": tags.get("base_model_path", ""),
        "base_model_id": tags.get("base_model_id", ""),
        "method": tags.get("method", "qlora"),
        "version": str(version.version),
        "mlflow_run_id": version.run_id or tags.get("mlflow_run_id", ""),
        "weights_digest": tags.get("weights_digest", ""),
    }


def find_champion(mlflow_module: Any, model_name: str) -> dict[str, Any] | None:
    """The manifest of the version holding alias `champion`, or None when the registered model
    or the alias does not exist (the first model of a use case has no champion to beat)."""
    version = version_by_alias(mlflow_module, model_name, CHAMPION)
    return None if version is None else version_manifest(mlflow_module, version)


def download_version(mlflow_module: Any, version: Any, download_root: Path | None = None) -> Path:
    """The artifacts of `version` in a local folder (downloaded once), narrowed to the folder
    that holds the adapter (or full model) files."""
    if download_root is None:
        from llm_assets.settings import state_dir

        download_root = state_dir() / "registry"
    target = download_root / _safe(version.name) / f"v{version.version}"
    found = _model_folder_in(target) if target.is_dir() else None
    if found is None:
        target.mkdir(parents=True, exist_ok=True)
        downloaded = mlflow_module.artifacts.download_artifacts(
            artifact_uri=f"models:/{version.name}/{version.version}", dst_path=str(target)
        )
        found = _model_folder_in(Path(downloaded))
    if found is None:
        raise FileNotFoundError(
            f"version {version.version} of registered model '{version.name}' (source "
            f"{version.source}) holds no adapter_config.json or config.json; register an adapter "
            "folder, not another artifact"
        )
    return found


def _is_model_folder(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in _MODEL_MARKERS)


def _model_folder_in(root: Path) -> Path | None:
    """`root` or its shallowest subfolder holding an adapter (preferred) or a model config."""
    for marker in _MODEL_MARKERS:
        hits = sorted(root.rglob(marker), key=lambda hit: len(hit.parts))
        if hits:
            return hits[0].parent
    return None


def _quoted(value: str) -> str:
    return value.replace("'", "\\'")


def _safe(name: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in name)
