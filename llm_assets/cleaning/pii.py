"""PII redaction with Microsoft Presidio, offline.

Replacements are typed placeholders (`<EMAIL>`, `<PHONE>`, `<PERSON>`, ...) so a model learns
where such values go without ever seeing one; with `pseudonymize=True` the same value gets the
same numbered placeholder within a batch (`<PERSON_1>` ... `<PERSON_1>`), through a keyed hash,
so a model can still learn that two mentions are one person.

People are found by spaCy's English NER model (`pii_ner`: a pip-installed wheel whose files
are checked against a pinned SHA-256 before loading) through Presidio's SpacyRecognizer, beside
the offline gazetteer and cue rules of `pii_names`; every other entity comes from a recognizer:
Presidio's own (email, credit card with Luhn, IBAN with its checksum, IP, phone numbers through
`phonenumbers` over many regions) with the project's checks on top (dates, versions, prices and
error codes are not phone numbers), and the detectors of `pii_structured` for street addresses,
postal codes, driver's licence and passport numbers. The NER model runs only on texts that may
hold a name, batched through `nlp.pipe` in `redact_pii_batch`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from llm_assets.cleaning.pii_names import (
    could_be_name,
    distinctive_name_word,
    find_person_names,
    find_speakers,
    names_listed_with,
    ner_person_span,
)
from llm_assets.cleaning.pii_ner import ner_nlp_engine
from llm_assets.cleaning.pii_structured import (
    find_addresses,
    find_cued_phone_numbers,
    find_id_numbers,
)
from llm_assets.settings import ALL_PII_ENTITIES

# Every type cleaning can redact (settings.PiiEntity), in the order _PRIORITY ranks them.
PII_ENTITIES: tuple[str, ...] = tuple(ALL_PII_ENTITIES)
# phonenumbers' regions tried on each run of digits, most common first: a number written the
# national way of any of them ("03.34.08.71.06", "0660 475 13 89") is found without a "+".
PHONE_REGIONS = (
    "US", "GB", "DE", "FR", "CA", "IN", "AU", "NL", "BE", "CH", "AT", "IT", "ES", "PT", "BR",
    "PL", "SE", "NO", "DK", "FI", "IE", "NZ", "ZA", "MX", "JP", "CZ", "HU", "SI", "EE", "IS",
)  # fmt: skip
# Minimum recognizer score to redact; Presidio's own phone and weak patterns sit at 0.4.
SCORE_THRESHOLD = 0.35
# When detections overlap, the merged span takes the type ranked first here.
_PRIORITY = {entity: rank for rank, entity in enumerate(PII_ENTITIES)}
_PRIORITY.update({"ADDRESS": 1, "PERSON": 20})

Span = tuple[int, int, str]


def luhn_is_valid(digits: str) -> bool:
    numbers = [int(d) for d in digits]
    checksum = 0
    for index, number in enumerate(reversed(numbers)):
        if index % 2 == 1:
            number = number * 2 - 9 if number > 4 else number * 2
        checksum += number
    return checksum % 10 == 0


def iban_is_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    rearranged = compact[4:] + compact[:4]
    as_digits = "".join(str(int(char, 36)) for char in rearranged)
    return int(as_digits) % 97 == 1


def _card_is_valid(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    return 13 <= len(digits) <= 19 and luhn_is_valid(digits)


def _ip_is_valid(match: str) -> bool:
    try:
        ipaddress.ip_address(match)
    except ValueError:
        return False
    return True


_DATE_LIKE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def _phone_is_plausible(match: str) -> bool:
    """Dates, versions, prices and bare counters share the shape of short phone numbers."""
    core = match.strip()
    if _DATE_LIKE.fullmatch(core):
        return False
    if re.fullmatch(r"\d+(?:\.\d+){1,3}", core) and not re.fullmatch(r"\d{3}\.\d{3}\.\d{4}", core):
        return False  # 4.2.1, 12.99, 2023.11.05.3; but 555.555.5555 is a phone number
    digits = re.sub(r"\D", "", re.split(r"(?i)\s*(?:x|ext\.?)\s*\d+$", core)[0])
    return _MIN_PHONE_DIGITS <= len(digits) <= 15


def _inside_token(text: str, start: int, end: int) -> bool:
    """A match glued to letters or codes (INV-2026-702092, ports 3000-8080) is not a number;
    one followed by a label ("+49 761 30 00 40-Office") is."""
    before = text[max(0, start - 2) : start]
    after = text[end : end + 2]
    return bool(re.search(r"(?:\w|\w-)$", before) or re.match(r"\w|-\d", after))


def _ssn_is_valid(match: str) -> bool:
    area, group, serial = match.split("-")
    return area not in {"000", "666"} and area[0] != "9" and group != "00" and serial != "0000"


# Phone shapes that phonenumbers' strict matcher leaves out: extensions, (0) trunk prefixes.
_PHONE_REGEX = (
    r"(?<![\w+/.-])(?:(?:\+|00)\d{1,3}[ .-]?)?(?:\(0\)[ ]?)?(?:\(\d{1,5}\)[ .-]?)?"
    r"\d{2,12}(?:[ .-]\d{2,8}){0,4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w-]|\.\d)"
)
_SSN_REGEX = r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])"
# Where a phone number could be: a run of 7+ characters of digits and separators.
_PHONE_CANDIDATE = re.compile(r"[+(]?\d[\d ()./-]{5,}\d")
_PHONE_WINDOW_CONTEXT = 3
_MIN_PHONE_DIGITS = 9


def _phone_windows(text: str) -> list[tuple[int, int]]:
    """Merged (start, end) windows around every run that could hold a phone number."""
    windows: list[tuple[int, int]] = []
    for match in _PHONE_CANDIDATE.finditer(text):
        if sum(char.isdigit() for char in match.group()) < _MIN_PHONE_DIGITS:
            continue  # dates, versions, short codes: nothing inside can pass the final check
        start = max(0, match.start() - _PHONE_WINDOW_CONTEXT)
        end = min(len(text), match.end() + _PHONE_WINDOW_CONTEXT)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def _import_presidio() -> None:
    """Import Presidio without the transformers/torch stack it probes for and we never use.

    Presidio imports transformers (and thinc imports torch) when installed, which costs seconds
    on every process start; hiding them during the import makes those optional paths fall back.
    """
    hidden = [name for name in ("transformers", "torch") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import presidio_analyzer  # noqa: F401
        import presidio_anonymizer  # noqa: F401
    finally:
        for name in hidden:
            del sys.modules[name]


def _recognizers() -> list[Any]:
    """Presidio recognizers for every entity, under the project's entity names."""
    from presidio_analyzer import (
        AnalysisExplanation,
        EntityRecognizer,
        Pattern,
        PatternRecognizer,
        RecognizerResult,
    )
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
    )

    class OfflineEmailRecognizer(EmailRecognizer):  # type: ignore[misc]
        # Presidio checks the domain against the public suffix list, which misses internal
        # (corp.local, company.internal) and reserved (.example) domains that an organisation's
        # own data is full of: for redaction, any well-formed address counts.
        def validate_result(self, pattern_text: str) -> bool:
            domain = pattern_text.rsplit("@", 1)[-1]
            return bool(re.fullmatch(r"(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}", domain))

    class CheckedPatternRecognizer(PatternRecognizer):  # type: ignore[misc]
        """A pattern recognizer whose matches must pass a plain Python check."""

        def __init__(self, entity: str, regex: str, score: float, check: Any) -> None:
            super().__init__(
                supported_entity=entity,
                name=f"{entity.title()}PatternRecognizer",
                patterns=[Pattern(entity.lower(), regex, score)],
            )
            self._check = check

        def validate_result(self, pattern_text: str) -> bool | None:
            return None if self._check(pattern_text) else False

    class CheckedPhoneRecognizer(PhoneRecognizer):  # type: ignore[misc]
        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            # phonenumbers' matcher walking the whole text once per region was 60% of the
            # chain's time. It only ever matches inside a run of digits and separators, so it
            # runs on those runs (with a little context for its letter checks), and stops
            # trying regions once a run has no uncovered digits left for another number.
            import phonenumbers

            results = []
            for start, end in _phone_windows(text):
                window = text[start:end]
                covered = [False] * len(window)
                for region in self.supported_regions:
                    for match in phonenumbers.PhoneNumberMatcher(
                        window, region, self.leniency or 0
                    ):
                        first, last = start + match.start, start + match.end
                        if any(covered[match.start : match.end]):
                            continue
                        covered[match.start : match.end] = [True] * (match.end - match.start)
                        if _phone_is_plausible(text[first:last]) and not _inside_token(
                            text, first, last
                        ):
                            results.append(
                                RecognizerResult(
                                    self.supported_entities[0],
                                    first,
                                    last,
                                    self.SCORE,
                                    AnalysisExplanation("CheckedPhoneRecognizer", self.SCORE),
                                )
                            )
                    uncovered = sum(
                        char.isdigit() and not done
                        for char, done in zip(window, covered, strict=True)
                    )
                    if uncovered < _MIN_PHONE_DIGITS:
                        break
            return results

    class SpanRecognizer(EntityRecognizer):  # type: ignore[misc]
        """Wraps a pure detector of `pii_names` or `pii_structured`: `text -> [(start, end)]`
        for one entity, or `text -> [(start, end, entity)]` for several."""

        def __init__(self, supported: list[str], find: Any, score: float, name: str) -> None:
            self._find = find
            self._score = score
            self._label = name
            super().__init__(supported_entities=supported, name=name)

        def load(self) -> None:
            return None

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            results = []
            for found in self._find(text):
                start, end = found[0], found[1]
                entity = found[2] if len(found) > 2 else self.supported_entities[0]
                if entity in entities:
                    explanation = AnalysisExplanation(self._label, self._score)
                    results.append(RecognizerResult(entity, start, end, self._score, explanation))
            return results

    class CheckedSpacyRecognizer(SpacyRecognizer):  # type: ignore[misc]
        """spaCy's PERSON entities, trimmed and checked by `ner_person_span` (not "Will the
        plan", not "Producer" in "Producer Leokadia Sokołowska")."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            results = []
            for result in super().analyze(text, entities, nlp_artifacts) if nlp_artifacts else []:
                span = ner_person_span(text, result.start, result.end)
                if span:
                    result.start, result.end = span
                    results.append(result)
            return results

    return [
        OfflineEmailRecognizer(supported_entity="EMAIL"),
        CreditCardRecognizer(supported_entity="CREDIT_CARD"),
        CheckedPatternRecognizer(
            "CREDIT_CARD", r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])", 0.9, _card_is_valid
        ),
        IbanRecognizer(supported_entity="IBAN"),
        CheckedPatternRecognizer(
            "IBAN",
            r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
            0.9,
            iban_is_valid,
        ),
        CheckedPatternRecognizer("SSN", _SSN_REGEX, 0.85, _ssn_is_valid),
        IpRecognizer(supported_entity="IP_ADDRESS"),
        CheckedPhoneRecognizer(supported_entity="PHONE", supported_regions=PHONE_REGIONS),
        CheckedPatternRecognizer("PHONE", _PHONE_REGEX, 0.5, _phone_is_plausible),
        SpanRecognizer(["PHONE"], find_cued_phone_numbers, 0.6, "CuedPhoneRecognizer"),
        CheckedSpacyRecognizer(supported_entities=["PERSON"]),
        SpanRecognizer(["PERSON"], find_person_names, 0.7, "PersonNameRecognizer"),
        SpanRecognizer(["PERSON"], find_speakers, 0.7, "SpeakerRecognizer"),
        SpanRecognizer(["ADDRESS", "POSTAL_CODE"], find_addresses, 0.75, "AddressRecognizer"),
        SpanRecognizer(["DRIVER_LICENSE", "PASSPORT"], find_id_numbers, 0.8, "IdNumberRecognizer"),
    ]


@lru_cache(maxsize=1)
def pii_analyzer() -> Any:
    """The process-wide Presidio AnalyzerEngine with the project's recognizers (built once)."""
    _import_presidio()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

    class NoContextEnhancer(ContextAwareEnhancer):  # type: ignore[misc]
        # Context words can raise a score but never decide here (every base score clears
        # SCORE_THRESHOLD; the project's own recognizers read their cues themselves), and
        # Presidio's enhancer deep-copies every result of every text: skipped.
        def enhance_using_context(self, text: str, raw_results: Any, *args: Any, **kw: Any) -> Any:
            return raw_results

    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in _recognizers():
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=ner_nlp_engine(),
        supported_languages=["en"],
        context_aware_enhancer=NoContextEnhancer(0, 0, 0, 0),
    )


@lru_cache(maxsize=1)
def _no_tokens() -> Any:
    """Empty NLP artifacts for a text the NER model need not read (no PERSON wanted, no capital
    letter): the other recognizers work on the raw text, and tokens only feed Presidio's
    context enhancer, which can raise a score but never decides here (every base score clears
    SCORE_THRESHOLD; checksummed matches score 1.0)."""
    from presidio_analyzer.nlp_engine import NlpArtifacts

    engine = pii_analyzer().nlp_engine
    return NlpArtifacts(
        entities=[],
        tokens=engine.nlp["en"].make_doc(""),
        tokens_indices=[],
        lemmas=[],
        nlp_engine=engine,
        language="en",
        scores=[],
    )


_NEED_DIGITS = frozenset(
    {"PHONE", "CREDIT_CARD", "IBAN", "SSN", "ADDRESS", "POSTAL_CODE", "DRIVER_LICENSE", "PASSPORT"}
)


_CAPITALISED = re.compile(r"(?<![\w'’])[^\W\d_a-z][\w'’-]*")


def needs_ner(
    text: str, entities: Sequence[str], allowed_words: frozenset[str] = frozenset()
) -> bool:
    """Whether the NER model should read `text`: PERSON is wanted and some capitalised word
    names someone even out of context (`distinctive_name_word`: "Antti", "Chichigov", not
    "Please", "Mark" or "Run"), is not part of an allow-listed term, and is not already inside
    a name the gazetteer rules find. Other texts skip the model, which is most of the PII
    stage's time; the gazetteer rules still read them."""
    if "PERSON" not in entities:
        return False
    words = [m for m in _CAPITALISED.finditer(text) if m.group().casefold() not in allowed_words]
    if not any(distinctive_name_word(match.group()) for match in words):
        return False
    # When the gazetteer rules already find every word that could be part of a name
    # ("Thanks,\nJane Doe"), the model has nothing to add.
    known = find_person_names(text) + find_speakers(text)
    return any(
        could_be_name(match.group()) and not any(s <= match.start() < e for s, e in known)
        for match in words
    )


def _entities_worth_running(text: str, wanted: Sequence[str]) -> list[str]:
    """Skip recognizers that cannot fire (no digit, no '@', no capital): most texts are cheap."""
    has_digit = any(char.isdigit() for char in text)
    keep = []
    for entity in wanted:
        if entity == "EMAIL" and "@" not in text:
            continue
        if entity in _NEED_DIGITS and not has_digit:
            continue
        if entity == "IP_ADDRESS" and not (has_digit or ":" in text):
            continue
        if entity == "PERSON" and text.islower():
            continue
        keep.append(entity)
    return keep


def _merge(results: Iterable[tuple[int, int, str, float]]) -> list[Span]:
    """Overlapping detections become one span, typed by the highest score, then priority."""
    merged: list[list[Any]] = []
    for start, end, entity, score in sorted(results):
        if merged and start < merged[-1][1]:
            group = merged[-1]
            group[1] = max(group[1], end)
            if (score, -_PRIORITY[entity]) > (group[3], -_PRIORITY[group[2]]):
                group[2], group[3] = entity, score
        else:
            merged.append([start, end, entity, score])
    return [(start, end, entity) for start, end, entity, _ in merged]


def find_pii(
    text: str, entities: Iterable[str], allow: Iterable[str] = (), nlp_artifacts: Any = None
) -> list[Span]:
    """Non-overlapping (start, end, entity) spans of the requested entities, in text order.

    A span inside an occurrence of one of `allow` (case-insensitive, whole words; product and
    company names that look like people's names, such as "Aurora Sync") is not PII.
    `nlp_artifacts`: the NER model's output for `text` when already computed in a batch (see
    `redact_pii_batch`); otherwise the model reads the text here if PERSON is wanted.
    """
    wanted = _validated(entities)
    allow = list(allow)
    run = _entities_worth_running(text, wanted)
    if not run or not text.strip():
        return []
    analyzer = pii_analyzer()
    if nlp_artifacts is None:
        nlp_artifacts = ner_batch([text], run, allow)[0]
    results = analyzer.analyze(
        text=text,
        language="en",
        entities=run,
        score_threshold=SCORE_THRESHOLD,
        nlp_artifacts=nlp_artifacts,
    )
    found = [(r.start, r.end, r.entity_type, r.score) for r in results]
    people = [(start, end) for start, end, entity, _ in found if entity == "PERSON"]
    if people:
        found += [(start, end, "PERSON", 0.7) for start, end in names_listed_with(text, people)]
    allowed = _allowed_intervals(text, allow)
    if allowed:
        found = [piece for span in found for piece in _without_allowed(text, span, allowed)]
    return _merge(found)


def _without_allowed(
    text: str, span: tuple[int, int, str, float], allowed: list[tuple[int, int]]
) -> list[tuple[int, int, str, float]]:
    """`span` unless an allow-listed term covers it. A name that runs over an allowed product
    ("Run Aurora Sync", "Aurora Sync Mobile App") keeps only what is left of it that still
    looks like a name, usually nothing."""
    start, end, entity, score = span
    overlapping = [(a, b) for a, b in allowed if a < end and start < b]
    if not overlapping:
        return [span]
    if any(a <= start and end <= b for a, b in overlapping) or entity != "PERSON":
        return [] if any(a <= start and end <= b for a, b in overlapping) else [span]
    pieces: list[tuple[int, int, str, float]] = []
    cursor = start
    for a, b in sorted(overlapping) + [(end, end)]:
        if a > cursor:
            trimmed = ner_person_span(text, cursor, min(a, end))
            words = (
                re.findall(r"[^\W\d_][\w'’-]*", text[trimmed[0] : trimmed[1]]) if trimmed else []
            )
            if trimmed and any(map(distinctive_name_word, words)):
                pieces.append((*trimmed, entity, score))
        cursor = max(cursor, b)
    return pieces


def _allowed_intervals(text: str, allow: Iterable[str]) -> list[tuple[int, int]]:
    """Where the allow-listed terms occur in `text` (whole words, any case)."""
    terms = sorted({term.strip() for term in allow if term.strip()}, key=len, reverse=True)
    if not terms:
        return []
    pattern = r"(?<!\w)(?:" + "|".join(re.escape(term) for term in terms) + r")(?!\w)"
    return [match.span() for match in re.finditer(pattern, text, re.IGNORECASE)]


def _validated(entities: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(entities))
    unknown = [entity for entity in wanted if entity not in _PRIORITY]
    if unknown:
        raise ValueError(
            f"unknown PII entities {unknown}: cleaning.pii_entities takes {list(PII_ENTITIES)}"
        )
    return wanted


class Pseudonymizer:
    """Numbered placeholders, the same for the same value: `<PERSON_1>`, `<EMAIL_2>` ...

    Values are keyed by an HMAC of their normalized form (case, spaces and separators folded),
    so the table never holds the value itself and a fresh key per run makes numbers unlinkable
    across runs. With `stable=True` the tag is a short hex of that HMAC instead of a number
    (`<PERSON_3f9a1c07>`): the same under one key in any batch or process, which a corpus cleaned
    in parallel batches needs.
    """

    def __init__(self, key: bytes | None = None, stable: bool = False) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        self._stable = stable
        self._numbers: dict[str, dict[bytes, int]] = {}

    def placeholder(self, entity: str, value: str) -> str:
        normalized = " ".join(value.casefold().split())
        if entity not in {"PERSON", "ADDRESS", "EMAIL"}:
            normalized = re.sub(r"[\s().-]", "", normalized)
        digest = hmac.new(self._key, f"{entity}\0{normalized}".encode(), hashlib.sha256).digest()
        if self._stable:
            return f"<{entity}_{digest[:4].hex()}>"
        numbers = self._numbers.setdefault(entity, {})
        number = numbers.setdefault(digest, len(numbers) + 1)
        return f"<{entity}_{number}>"


def _apply(text: str, spans: Sequence[Span], pseudonymizer: Pseudonymizer | None) -> str:
    """Presidio's anonymizer over the merged spans: a fixed placeholder, or a pseudonym."""
    if not spans:
        return text
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    operators = {
        entity: (
            OperatorConfig(
                "custom", {"lambda": lambda value, e=entity: pseudonymizer.placeholder(e, value)}
            )
            if pseudonymizer
            else OperatorConfig("replace", {"new_value": f"<{entity}>"})
        )
        for entity in {entity for _, _, entity in spans}
    }
    results = [RecognizerResult(entity, start, end, 1.0) for start, end, entity in spans]
    return str(_anonymizer().anonymize(text, results, operators).text)


@lru_cache(maxsize=1)
def _anonymizer() -> Any:
    _import_presidio()
    from presidio_anonymizer import AnonymizerEngine

    return AnonymizerEngine()


def redact_pii(
    text: str, entities: Iterable[str], allow: Iterable[str] = ()
) -> tuple[str, Counter[str]]:
    """The text with each identifier replaced by `<ENTITY>`, and how many of each were found."""
    spans = find_pii(text, entities, allow)
    return _apply(text, spans, None), Counter(entity for _, _, entity in spans)


def redact_pii_batch(
    texts: Sequence[str],
    entities: Iterable[str],
    pseudonymize: bool = False,
    key: bytes | None = None,
    allow: Iterable[str] = (),
    stable_pseudonyms: bool = False,
) -> list[tuple[str, Counter[str]]]:
    """`redact_pii` over many texts with one analyzer; pseudonyms are consistent across the batch
    (and across batches sharing `key` with `stable_pseudonyms`, see `Pseudonymizer`).

    `key` seeds the pseudonym hash (a random one per call when left out).
    """
    wanted = _validated(entities)
    allow = list(allow)
    pseudonymizer = Pseudonymizer(key, stable_pseudonyms) if pseudonymize else None
    artifacts = ner_batch(texts, wanted, allow)
    out: list[tuple[str, Counter[str]]] = []
    for text, nlp_artifacts in zip(texts, artifacts, strict=True):
        spans = find_pii(text, wanted, allow, nlp_artifacts)
        out.append((_apply(text, spans, pseudonymizer), Counter(e for _, _, e in spans)))
    return out


NER_BATCH_SIZE = 256


def ner_batch(
    texts: Sequence[str], entities: Sequence[str], allow: Iterable[str] = ()
) -> list[Any]:
    """The NER model's artifacts for each text; texts that need no NER get empty ones.

    The model reads only the lines (long ones cut into sentences) that hold a word that could
    be a name, all of them batched through `nlp.pipe`: a manual page or a long ticket has a
    few such lines, and the model's cost grows with every token it reads. Each text is then
    tokenized whole (cheap) and carries the PERSON entities found in its lines, mapped back.
    """
    if not texts:
        # Nothing to read: the analyzer (spaCy and Presidio, seconds to load) is not built.
        return []
    artifacts: list[Any] = [_no_tokens()] * len(texts)
    if "PERSON" not in entities:
        return artifacts
    allowed_words = frozenset(word.casefold() for term in allow for word in term.split())
    segments: list[tuple[int, int, str]] = []  # (text index, offset, segment)
    for index, text in enumerate(texts):
        for match in _SEGMENT.finditer(text):
            if needs_ner(match.group(), entities, allowed_words):
                segments.append((index, match.start(), match.group()))
    if not segments:
        return artifacts
    engine = pii_analyzer().nlp_engine
    nlp = engine.nlp["en"]
    people: dict[int, list[tuple[int, int]]] = {}
    docs = nlp.pipe((segment for _, _, segment in segments), batch_size=NER_BATCH_SIZE)
    for (index, offset, _), doc in zip(segments, docs, strict=True):
        found = people.setdefault(index, [])
        found += [
            (offset + e.start_char, offset + e.end_char) for e in doc.ents if e.label_ == "PERSON"
        ]
    for index, spans in people.items():
        doc = nlp.make_doc(texts[index])
        ents = [
            doc.char_span(start, end, label="PERSON", alignment_mode="expand")
            for start, end in spans
        ]
        doc.ents = [ent for ent in _non_overlapping(ents) if ent is not None]
        artifacts[index] = engine._doc_to_nlp_artifact(doc, "en")
    return artifacts


# A line, or a sentence of a long line: what the NER model reads at a time.
_SEGMENT = re.compile(r"[^\n]{1,400}(?:(?<=[.!?])(?=\s)|(?=\n)|$)|[^\n]{400,}?(?=\s|$)")


def _non_overlapping(spans: Iterable[Any]) -> list[Any]:
    kept: list[Any] = []
    for span in sorted((s for s in spans if s is not None), key=lambda s: (s.start, -s.end)):
        if not kept or span.start >= kept[-1].end:
            kept.append(span)
    return kept
