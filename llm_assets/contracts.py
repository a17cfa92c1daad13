"""What one asset hands the next, typed: a model folder, an adapter, a chat template, an index,
a registry version. The IO manager stores each as JSON and validates it back into its class
when an asset asks for it by type, so a missing or misspelt key fails where it is read, with
the asset's name, instead of as a KeyError three steps later.

Tables (DataFrames, `datasets` objects, `StoredTable`) cross as themselves. The reports are
contracts too (`EvalReport`, `RedTeamReport`, `HumanReviewScores`, `ExportedCopies`): their
stored JSON keeps the keys older runs wrote, so earlier reports still load.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# A value of free-form details (a conversion summary, an embedder's description): JSON scalars.
Scalar = str | int | float | bool | None


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Markdown(str):
    """Text a stage returns for people to read as Markdown (shown rendered in the Dagster UI)."""


class Link(str):
    """A URL a stage returns for people to follow (an MLflow run, a registry page)."""


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
    """`qlora_adapter` (and `preference_adapter`): the fine-tuned weights (an adapter, or a full
    model for `full`) and the run that made them.

    A preference-tuned adapter sits on the SFT model merged into the base: `base_model_path` is
    that merged folder, `original_base_model_path` the base SFT started from."""

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
    preference_method: str = ""
    original_base_model_path: str = ""

    @property
    def start_model_path(self) -> str:
        """The model before any tuning: what evaluation calls the base."""
        return self.original_base_model_path or self.base_model_path


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
    # How `retrieve` ranks chunks; manifests written before hybrid search existed are dense.
    search: Literal["dense", "hybrid"] = "dense"
    hybrid_candidates: int = 50
    rrf_k: int = 60
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


class ReviewedAnswer(Contract):
    """One answer one reviewer (one filled-in file) scored."""

    reviewer: str  # the file the scores came from
    pair_id: str
    model: str
    scores: dict[str, int]  # criterion -> 1-5


class HumanReviewScores(Contract):
    """`human_review_scores`: reviewers' 1-5 scores of the current export, unblinded."""

    export_id: str
    review_dir: str
    files: list[str]
    reviews: int
    comments: int
    scores: dict[str, dict[str, float]]  # model label -> criterion -> mean score
    counts: dict[str, dict[str, int]]
    answers: list[ReviewedAnswer] = []


class Agreement(Contract):
    """How two raters agree on the 1-5 scores of the answers both scored, per criterion."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")
    answers: int  # distinct answers both scored
    ratings: int  # (answer, criterion) scores compared
    weighted_kappa: float  # Cohen's kappa, quadratic weights
    kappa_low: float
    kappa_high: float
    spearman: float
    spearman_low: float
    spearman_high: float


class JudgeSummary(Contract):
    """What the LLM judge said of each model, how well it agrees with people, and whether the
    promotion gate listens to it."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")

    enabled: bool
    endpoint: str
    judge_model: str
    answers_scored: int
    failed: int
    scores: dict[str, dict[str, float]]  # model label -> criterion -> mean judge score
    overall: dict[str, float]  # model label -> mean over criteria
    with_humans: Agreement | None
    between_humans: Agreement | None
    counts_in_gate: bool
    why_ignored: str  # "" when it counts


class JudgedAnswer(Contract):
    pair_id: str
    model: str
    scores: dict[str, int]
    rationale: str


class JudgeScores(JudgeSummary):
    """`judge_scores`: the summary, every judged answer, and every answer the judge could not
    score, with the reason."""

    answers: list[JudgedAnswer]
    failures: list[dict[str, str]]  # pair_id, model, reason

    def summary(self) -> JudgeSummary:
        return JudgeSummary.model_validate(self.model_dump(include=set(JudgeSummary.model_fields)))


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


def _not_measured(value: object) -> bool:
    return value is None


class MetricInterval(Contract):
    """A difference (tuned − other) with its paired bootstrap interval."""

    delta: float
    low: float
    high: float


class ComparedModel(Contract):
    """A model `eval_report` compared: its label, weights and registry version ("" for none)."""

    label: str
    path: str
    base_model_path: str
    method: str
    version: str


class WorstAnswer(Contract):
    pair_id: str
    task: str
    conversation: str
    reference: str
    answer: str
    rougeL: float


class SideBySideExample(Contract):
    """A golden prompt with the reference and every model's answer and ROUGE-L, by label."""

    pair_id: str
    task: str
    conversation: str
    reference: str
    answers: dict[str, str]
    rougeL: dict[str, float]


class ModeScores(Contract):
    """A model's golden metrics and mean groundedness in one mode (closed-book, retrieval)."""

    mode: str
    rougeL: float | None
    bleu: float | None
    chrf: float | None
    exact_match: float | None
    groundedness: float


class TaskRougeL(Contract):
    task: str
    count: int
    rougeL: float


class LeastGroundedAnswer(Contract):
    pair_id: str
    conversation: str
    answer: str
    groundedness: float


class RetrievalModes(Contract):
    """Closed-book against retrieval: scores by model label, deltas by comparison and metric,
    the served tuned model's ROUGE-L by task, its least grounded answers."""

    models: dict[str, ModeScores]
    deltas: dict[str, dict[str, MetricInterval]]
    rougeL_by_task: list[TaskRougeL]
    least_grounded: list[LeastGroundedAnswer]


class RetrievalQuality(Contract):
    """How well `rag_index` finds the golden questions' source records."""

    k: int
    recall_at_k: float
    mrr: float
    golden_queries: int
    chunks: int


class FactAnswer(Contract):
    question: str
    facts: list[str]
    stated: bool
    chunks_with_fact: list[str]
    answer: str


class FactsSummary(Contract):
    """The held-out factual questions: only `questions` (0) when the profile has none."""

    questions: int
    mode: str | None = Field(None, exclude_if=_not_measured)
    stated: int | None = Field(None, exclude_if=_not_measured)
    stated_share: float | None = Field(None, exclude_if=_not_measured)
    in_context: int | None = Field(None, exclude_if=_not_measured)
    groundedness: float | None = Field(None, exclude_if=_not_measured)
    rows: list[FactAnswer] | None = Field(None, exclude_if=_not_measured)


class PromotionVerdict(Contract):
    """The promotion gate as `eval_report` judged it: one row per criterion."""

    passed: bool
    summary: str
    criteria: list[dict[str, Scalar]]


class EvalReport(Contract):
    """`eval_report`: the tuned model against its base (and the champion, when one was
    compared) on the golden set, with the red team, human review and the promotion verdict.

    Metrics of a model are `golden_<metric>_<label>`, `<split>_perplexity_<label>`,
    `latency_ms_p50_<label>` and `tokens_per_second_<label>` (label: tuned, base, champion, and
    sft, the SFT model a preference-tuned challenger started from);
    None where it was not measured (the gate fails a criterion on None or NaN). The champion's
    are left out of the stored JSON when no champion was compared. `deltas["<metric>_vs_<label>"]`
    is tuned minus that model; the baseline is the champion when compared, else the SFT model
    when the challenger was preference-tuned, else the base."""

    # NaN (a metric that could not be computed) stays NaN in the stored JSON, as readers expect.
    model_config = ConfigDict(ser_json_inf_nan="constants")

    rows: dict[str, int]  # split -> rows scored
    exact_match_rows: int
    baseline_label: str
    confidence: float
    golden_rougeL_tuned: float | None = None
    golden_bleu_tuned: float | None = None
    golden_chrf_tuned: float | None = None
    golden_exact_match_tuned: float | None = None
    validation_perplexity_tuned: float | None = None
    golden_perplexity_tuned: float | None = None
    golden_rougeL_base: float | None = None
    golden_bleu_base: float | None = None
    golden_chrf_base: float | None = None
    golden_exact_match_base: float | None = None
    validation_perplexity_base: float | None = None
    golden_perplexity_base: float | None = None
    # The SFT model a preference-tuned challenger started from (absent otherwise).
    golden_rougeL_sft: float | None = Field(None, exclude_if=_not_measured)
    golden_bleu_sft: float | None = Field(None, exclude_if=_not_measured)
    golden_chrf_sft: float | None = Field(None, exclude_if=_not_measured)
    golden_exact_match_sft: float | None = Field(None, exclude_if=_not_measured)
    validation_perplexity_sft: float | None = Field(None, exclude_if=_not_measured)
    golden_perplexity_sft: float | None = Field(None, exclude_if=_not_measured)
    latency_ms_p50_sft: float | None = Field(None, exclude_if=_not_measured)
    tokens_per_second_sft: float | None = Field(None, exclude_if=_not_measured)
    golden_rougeL_champion: float | None = Field(None, exclude_if=_not_measured)
    golden_bleu_champion: float | None = Field(None, exclude_if=_not_measured)
    golden_chrf_champion: float | None = Field(None, exclude_if=_not_measured)
    golden_exact_match_champion: float | None = Field(None, exclude_if=_not_measured)
    validation_perplexity_champion: float | None = Field(None, exclude_if=_not_measured)
    golden_perplexity_champion: float | None = Field(None, exclude_if=_not_measured)
    golden_rougeL_baseline: float | None = None
    deltas: dict[str, MetricInterval]
    latency_ms_p50_tuned: float | None = None
    tokens_per_second_tuned: float | None = None
    latency_ms_p50_base: float | None = None
    tokens_per_second_base: float | None = None
    latency_ms_p50_champion: float | None = Field(None, exclude_if=_not_measured)
    tokens_per_second_champion: float | None = Field(None, exclude_if=_not_measured)
    worst_examples: list[WorstAnswer]
    side_by_side: list[SideBySideExample]
    retrieval_modes: RetrievalModes
    rag_index: RetrievalQuality
    facts: FactsSummary
    facts_stated_share: float
    mlflow_run_id: str
    base_model_id: str
    adapter_path: str
    method: str
    models: list[ComparedModel]
    champion_skipped: str  # why a champion was not compared ("" when it was, or none exists)
    redteam_pass_rate: float | None
    redteam_categories: dict[str, RedTeamCategory]
    redteam_canary_leaks: int
    redteam_pii_in_outputs: int
    redteam_model_alone_pass_rate: float | None
    redteam_declined_out_of_scope: int
    redteam_answers_with_pii_withheld: int
    redteam_failures: list[dict[str, str]]
    human_scores: dict[str, dict[str, float]]  # model label -> criterion -> mean score
    human_counts: dict[str, dict[str, int]]
    human_reviews: int
    review_export_id: str
    review_dir: str
    judge: JudgeSummary | None = None  # None in reports made before the judge existed
    decoding: str = ""  # GenerationConfig.describe() of the answers; "" in older reports
    promotion: PromotionVerdict | None = None  # None only before the gate has judged it
    report_path: str
    report_html_path: str
