"""What one asset hands the next, typed: a model folder, an adapter, a chat template, an index,
a registry version. The IO manager stores each as JSON and validates it back into its class
when an asset asks for it by type, so a missing or misspelt key fails where it is read, with
the asset's name, instead of as a KeyError three steps later.

Tables (DataFrames, `datasets` objects, `StoredTable`) cross as themselves; reports whose keys
are metric names (eval_report, redteam_report, human_review_scores, quantized_export) stay
JSON documents rendered for people.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

# A value of free-form details (a conversion summary, an embedder's description): JSON scalars.
Scalar = str | int | float | bool | None


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BaseModelFolder(Contract):
    """`base_model`: the model fine-tuning starts from, as a local folder."""

    kind: Literal["tiny", "pretrained", "gguf"]
    model_id: str
    revision: str | None
    license: str
    path: str
    parameters: int | None
    weights_digest: str
    # How it was made: the tiny model's pre-training, or the GGUF file it was converted from.
    pretrain: dict[str, Scalar] = {}
    gguf: dict[str, Scalar] = {}


class ChatTemplate(Contract):
    """`chat_template`: the template the dataset was measured with and training applies."""

    template: str
    origin: str
    digest: str
    path: str
    base_model_id: str
    base_weights_digest: str


class Adapter(Contract):
    """`qlora_adapter`: the fine-tuned weights (an adapter, or a full model for `full`) and the
    run that made them."""

    path: str
    method: str
    base_model_path: str
    base_model_id: str
    mlflow_run_id: str
    mlflow_model_uri: str | None = None
    global_step: int
    train_loss: float
    resumed_from: str | None = None
    retrieval: bool = False
    weights_digest: str


class NearDuplicateIndexFile(Contract):
    """`near_duplicate_index`: MinHash signatures of the kept records, for the next run."""

    path: str | None
    records: int
    settings: dict[str, Scalar]
    reused_from_run: bool


class RagIndex(Contract):
    """`rag_index`: where the chunks and vectors are searchable, the embedder that made them,
    and how well golden questions find their record."""

    store: Literal["faiss", "pgvector"]
    path: str | None = None
    url_env: str | None = None
    table: str | None = None
    index: str
    chunks: int
    dim: int
    model: str
    embedder: dict[str, Scalar]
    hnsw_ef_search: int
    k: int
    recall_at_k: float
    mrr: float
    golden_queries: int
    mlflow_run_id: str


class MergedModel(Contract):
    """`merged_model`: the adapter folded into its base, one safetensors model."""

    path: str
    weights_digest: str
    base_model_id: str
    base_model_path: str
    method: str
    mlflow_run_id: str
    adapter_weights_digest: str
    license: str
    name: str


class RegisteredVersion(Contract):
    """`registered_challenger`: the adapter as a version of the registered model."""

    model_name: str
    version: str
    created: bool
    source: str
    weights_digest: str
    adapter_path: str
    adapter_mlflow_run_id: str


class PromotionOutcome(Contract):
    """`champion_model`: which version holds `champion` after the gate, and why."""

    model_name: str
    promoted: bool
    champion_version: str | None
    previous_champion_version: str | None
    challenger_version: str
    failed_criteria: list[str]
    criteria: list[dict[str, Scalar]]


class ExportedCopies(Contract):
    """`quantized_export`: one row per format (its folder or file, size, speed, perplexity and
    golden ROUGE-L and their deltas against the merged model)."""

    path: str
    merged_path: str
    exports: list[dict[str, Scalar]]
    weights_digest: str


class HumanReviewScores(Contract):
    """`human_review_scores`: reviewers' 1-5 scores of the current export, unblinded."""

    export_id: str
    review_dir: str
    files: list[str]
    reviews: int
    comments: int
    scores: dict[str, dict[str, float]]  # model label -> criterion -> mean score
    counts: dict[str, dict[str, int]]


class RedTeamCategory(Contract):
    passed: int
    total: int
    pass_rate: float


class RedTeamReport(Contract):
    """`redteam_report`: pass rates as served and of the model alone, per category; canaries,
    PII values in answers, and the failing prompts."""

    pass_rate: float
    total: int
    model_alone_pass_rate: float | None
    declined_out_of_scope: int
    answers_with_pii_withheld: int
    categories: dict[str, RedTeamCategory]
    canary_leaks: int
    pii_in_outputs: int
    pii_by_entity: dict[str, int]
    failures: list[dict[str, str]]
