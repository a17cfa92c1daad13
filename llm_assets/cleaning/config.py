"""The `cleaning:` section of a profile: noise, normalization, PII, quality and dedup."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, model_validator

from llm_assets.config_base import StrictModel

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
