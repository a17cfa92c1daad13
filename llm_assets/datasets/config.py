"""The `datasets:` section of a profile: pair templates, the teacher, splits, the golden set
and retrieval-augmented rows."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llm_assets.config_base import StrictModel


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
