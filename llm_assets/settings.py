"""Typed profiles: the one place that reads `conf/`.

A profile is a YAML file whose sections map onto the models below. Only `sources:` is
required; every other section has defaults that run on a 2-core CPU machine.
`LLM_ASSETS_PROFILE` picks the profile; relative source paths are relative to the profile file.

Each stage's sections are declared next to the stage (`llm_assets/<stage>/config.py`) and
gathered here, where every name stays importable as `llm_assets.settings.<Name>`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from llm_assets.cleaning.config import (
    ALL_PII_ENTITIES,
    DOCUMENTATION_QUALITY_CHANGES,
    CleaningConfig,
    NearDuplicateConfig,
    NoiseConfig,
    NoiseStep,
    NormalizeConfig,
    PiiEntity,
    QualityPreset,
    QualityThresholds,
)
from llm_assets.config_base import Allocator, ProfileError, StrictModel
from llm_assets.datasets.config import (
    DOCUMENT_TEMPLATE_FIELDS,
    AnswerTemplate,
    ConversationTemplate,
    DatasetConfig,
    DocumentTask,
    DocumentTemplates,
    PairTemplates,
    RetrievalConfig,
    TeacherConfig,
    pair_template_problem,
)
from llm_assets.evaluation.config import (
    EvaluationConfig,
    GenerationConfig,
    PromotionCriteria,
    RedTeamConfig,
    UseCaseConfig,
)
from llm_assets.export.config import ExportConfig, ExportFormat
from llm_assets.rag.config import RagConfig
from llm_assets.serving.config import GuardrailsConfig, ScopeGuardConfig, ServingConfig
from llm_assets.sources.config import FeedbackConfig, SourceConfig, SourceKind
from llm_assets.training.config import (
    ModelConfig,
    PreferenceConfig,
    PreferenceMethod,
    TinyModelConfig,
    TrainingConfig,
    TrainingMethod,
)

__all__ = [
    "ALL_PII_ENTITIES",
    "DEFAULT_PROFILE_PATH",
    "DOCUMENTATION_QUALITY_CHANGES",
    "DOCUMENT_TEMPLATE_FIELDS",
    "PROFILE_ENV_VAR",
    "PROJECT_ROOT",
    "STATE_DIR_ENV_VAR",
    "AnswerTemplate",
    "CleaningConfig",
    "ConversationTemplate",
    "DatasetConfig",
    "DocumentTask",
    "DocumentTemplates",
    "EvaluationConfig",
    "ExecutionConfig",
    "ExportConfig",
    "ExportFormat",
    "FeedbackConfig",
    "GenerationConfig",
    "GuardrailsConfig",
    "ModelConfig",
    "PreferenceConfig",
    "PreferenceMethod",
    "NearDuplicateConfig",
    "NoiseConfig",
    "NoiseStep",
    "NormalizeConfig",
    "PairTemplates",
    "PiiEntity",
    "Profile",
    "ProfileError",
    "PromotionCriteria",
    "QualityPreset",
    "QualityThresholds",
    "RagConfig",
    "RedTeamConfig",
    "RetrievalConfig",
    "ScopeGuardConfig",
    "ServingConfig",
    "SourceConfig",
    "SourceKind",
    "StrictModel",
    "TeacherConfig",
    "TinyModelConfig",
    "TrackingConfig",
    "TrainingConfig",
    "TrainingMethod",
    "UseCaseConfig",
    "load_profile",
    "pair_template_problem",
    "state_dir",
]

PROFILE_ENV_VAR = "LLM_ASSETS_PROFILE"
STATE_DIR_ENV_VAR = "LLM_ASSETS_STATE_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PROFILE_PATH = PROJECT_ROOT / "conf" / "smollm2.yaml"


# Sections of the platform rather than of a stage: MLflow and the Dagster executor.
class TrackingConfig(StrictModel):
    experiment_name: str = "llm_assets"


class ExecutionConfig(StrictModel):
    """How Dagster runs the steps of a run launched from the UI, a schedule or `dagster` CLI."""

    executor: Literal["in_process", "multiprocess", "k8s"] = Field(
        "in_process",
        description="in_process: one process, heavy imports paid once; multiprocess: a process "
        "per step; k8s: a Kubernetes Job per step (dagster-k8s, with the run launcher of "
        "deploy/helm/values.yaml)",
    )
    max_concurrent: int = Field(2, ge=1, description="parallel steps with multiprocess or k8s")
    k8s_namespace: str = Field("llm-assets", description="namespace of the step Jobs (k8s)")
    allocator: Allocator = Field(
        "auto",
        description="malloc of `llm-assets materialize` (its in-process steps) and of the "
        "Dagster processes `make dev` starts: tcmalloc or jemalloc (an error where not "
        "installed), system (glibc's), or auto (tcmalloc, else jemalloc, else glibc's); the "
        "training process takes training.allocator. None changes a result",
    )


class Profile(StrictModel):
    sources: list[SourceConfig] = Field(min_length=1)
    cleaning: CleaningConfig = Field(default_factory=CleaningConfig)
    datasets: DatasetConfig = Field(default_factory=DatasetConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    preference: PreferenceConfig = Field(default_factory=PreferenceConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    redteam: RedTeamConfig = Field(default_factory=RedTeamConfig)
    guardrails: GuardrailsConfig = Field(default_factory=GuardrailsConfig)
    use_case: UseCaseConfig = Field(default_factory=UseCaseConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    rag: RagConfig = Field(default_factory=RagConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    # Set by the loader, not written in YAML: where relative source paths start.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _source_names_are_unique(self) -> Profile:
        names = [source.name for source in self.sources]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"source names must be unique; repeated: {repeated}")
        if "feedback" in names:
            raise ValueError(
                "source name 'feedback' is reserved for the curated serving feedback "
                "(feedback_records); rename the source"
            )
        unknown = sorted(set(self.datasets.templates.by_source) - {*names, "feedback"})
        if unknown:
            raise ValueError(f"datasets.templates.by_source names unknown sources: {unknown}")
        return self

    @model_validator(mode="after")
    def _scope_guard_has_retrieval(self) -> Profile:
        if self.guardrails.scope.enabled and not self.datasets.retrieval.enabled:
            raise ValueError(
                "guardrails.scope needs datasets.retrieval.enabled: its threshold is "
                "calibrated on the training questions' retrieval scores; turn retrieval on or "
                "the scope guard off"
            )
        return self

    def golden_path(self) -> Path | None:
        return self._profile_path(self.datasets.golden_file)

    def facts_path(self) -> Path | None:
        return self._profile_path(self.evaluation.facts_file)

    def dev_facts_path(self) -> Path | None:
        return self._profile_path(self.evaluation.dev_facts_file)

    def named_files(self) -> dict[tuple[str, str], Path]:
        """The files the profile names besides its sources, (section, key) -> absolute path:
        what a copy of the profile elsewhere must point at."""
        named = {
            ("datasets", "golden_file"): self.golden_path(),
            ("evaluation", "facts_file"): self.facts_path(),
            ("evaluation", "dev_facts_file"): self.dev_facts_path(),
            ("cleaning", "forget_file"): self.forget_path(),
        }
        return {key: path for key, path in named.items() if path is not None}

    def _profile_path(self, setting: str | None) -> Path | None:
        """A path setting, a relative one read from the profile's folder."""
        if setting is None:
            return None
        path = Path(setting)
        return path if path.is_absolute() else self.base_dir / path

    def knowledge_sources(self) -> list[str]:
        """The sources `rag_index` holds: `rag.sources`, else every `documents` source."""
        if self.rag.sources:
            return list(self.rag.sources)
        return [source.name for source in self.sources if source.kind == "documents"]

    def forget_path(self) -> Path | None:
        return self._profile_path(self.cleaning.forget_file)

    def source_glob(self, source: SourceConfig) -> str:
        """Where a source reads from: its glob or folder made absolute; for sql, its URL with
        the password hidden."""
        if source.path is None:
            return source.redacted_url or ""
        path = Path(source.path)
        return str(path if path.is_absolute() else self.base_dir / path)


def _format_validation_error(path: Path, raw: dict[str, Any], error: ValidationError) -> str:
    lines = [f"{path}: invalid profile"]
    for item in error.errors():
        location = list(item["loc"])
        # Name a source by its name, not its index, where the YAML gives one.
        if len(location) >= 2 and location[0] == "sources" and isinstance(location[1], int):
            sources = raw.get("sources") or []
            if location[1] < len(sources) and isinstance(sources[location[1]], dict):
                name = sources[location[1]].get("name")
                if name:
                    location[1] = f"{location[1]}({name})"
        key = ".".join(str(part) for part in location) or "<top level>"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = (
                "unknown key (check the spelling; see docs/reference/profile.md for valid keys)"
            )
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def resolve_profile_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Which profile is meant: `path`, else $LLM_ASSETS_PROFILE, else conf/smollm2.yaml."""
    return Path(path or os.environ.get(PROFILE_ENV_VAR) or DEFAULT_PROFILE_PATH).resolve()


def load_profile(path: str | os.PathLike[str] | None = None) -> Profile:
    """Read and validate a profile: `path`, else $LLM_ASSETS_PROFILE, else conf/smollm2.yaml."""
    profile_path = resolve_profile_path(path)
    if not profile_path.is_file():
        raise ProfileError(f"{profile_path}: profile not found (set {PROFILE_ENV_VAR} or PROFILE=)")
    try:
        raw = yaml.safe_load(profile_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ProfileError(f"{profile_path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ProfileError(f"{profile_path}: a profile is a mapping with at least 'sources:'")
    try:
        return Profile.model_validate({**raw, "base_dir": profile_path.parent})
    except ValidationError as error:
        raise ProfileError(_format_validation_error(profile_path, raw, error)) from None


def state_dir() -> Path:
    """Where assets, models and MLflow live: $LLM_ASSETS_STATE_DIR, else <DAGSTER_HOME>/var."""
    explicit = os.environ.get(STATE_DIR_ENV_VAR)
    if explicit:
        return Path(explicit).resolve()
    return Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT).resolve() / "var"


def default_tracking_uri() -> str:
    """The local MLflow store under the state dir (its folder created), used when neither a
    resource setting nor MLFLOW_TRACKING_URI names one."""
    database = state_dir() / "mlflow" / "mlflow.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{database}"
