"""Quality filtering: Gopher/C4-style text heuristics, offline language identification
(py3langid, which ships its model) and a rule-scored toxicity word list.

`quality_reasons` says why a text should be dropped ([] = keep). The defaults keep prose,
support tickets and Markdown documentation with code blocks, tables and CLI examples: code
and table rules are left out of the prose statistics instead of counting against a page.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from llm_assets.settings import QualityThresholds

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_CODE_FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$")
_SYMBOL = re.compile(r"[#…]|\.\.\.")
# Markdown heading markers are structure, not the hashtags Gopher's symbol ratio is after.
_HEADING_MARK = re.compile(r"^[ \t]*#{1,6}[ \t]+", re.M)
_ELLIPSIS_END = re.compile(r"(?:\.\.\.|…)\s*$")
_BULLET = re.compile(r"^\s*(?:[-*•‣+]|\d+[.)])\s")

# Gopher's stop words: real English prose uses a few of them.
STOP_WORDS = frozenset(["the", "be", "to", "of", "and", "that", "have", "with"])

# Word -> weight. Strong profanity and slurs weigh 1, mild words 0.5. Support language such as
# "kill the process", "abort", "execute", "dead link", "hang", "crash" is deliberately absent.
TOXIC_WORDS: dict[str, float] = {
    **dict.fromkeys(
        [
            "fuck", "fucking", "fucked", "fucker", "fuckers", "fucks", "motherfucker", "fck",
            "shit", "shitty", "bullshit", "asshole", "assholes", "bastard", "bastards", "bitch",
            "bitches", "cunt", "cunts", "dickhead", "twat", "wanker", "prick", "dumbass",
            "jackass", "retard", "retarded", "scumbag", "scum", "moron", "morons", "idiot",
            "idiots", "imbecile", "imbeciles", "douchebag", "shithead", "piss",
        ],
        1.0,
    ),
    **dict.fromkeys(
        ["damn", "crap", "crappy", "stupid", "dumb", "hell", "pathetic", "sucks", "pissed"],
        0.5,
    ),
}  # fmt: skip
TOXIC_PHRASES = re.compile(
    r"\b(?:(?:i(?:'ll| will| am going to|'m going to)|we(?:'ll| will)) (?:kill|hurt|find) you"
    r"|kill yourself|kys|go die|hope you die|die in a fire|shut up)\b",
    re.I,
)


@dataclass(frozen=True)
class _Prose:
    text: str
    words: list[str]
    lines: list[str]


LANGUAGE_SAMPLE_CHARS = 2000


def prose_of(text: str) -> _Prose:
    """The text with fenced code, inline code and table rules left out, for the statistics."""
    prose = _INLINE_CODE.sub(" ", _CODE_FENCE.sub("\n", text))
    lines = [line for line in prose.split("\n") if line.strip() and not _TABLE_RULE.match(line)]
    return _Prose("\n".join(lines), _WORD.findall(prose), lines)


def _duplicate_fraction(items: list[str]) -> float:
    if not items:
        return 0.0
    counts = Counter(items)
    return sum(count for count in counts.values() if count > 1) / len(items)


def _top_ngram_fraction(words: list[str], n: int) -> float:
    ngrams = Counter(zip(*(words[i:] for i in range(n)), strict=False))  # shifted views
    if not ngrams:
        return 0.0
    top, count = ngrams.most_common(1)[0]
    return count * sum(map(len, top)) / max(sum(map(len, words)), 1)


def _duplicate_ngram_fraction(words: list[str], n: int) -> float:
    """Share of word characters inside n-grams that occur more than once (Gopher)."""
    starts: dict[tuple[str, ...], list[int]] = {}
    for i, ngram in enumerate(zip(*(words[j:] for j in range(n)), strict=False)):
        starts.setdefault(ngram, []).append(i)
    covered = [False] * len(words)
    for positions in starts.values():
        if len(positions) > 1:
            for start in positions:
                covered[start : start + n] = [True] * n
    total = sum(map(len, words))
    return sum(len(w) for w, hit in zip(words, covered, strict=True) if hit) / max(total, 1)


@functools.cache
def _language_identifier():  # type: ignore[no-untyped-def]
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


# English function words: a quarter of running English text, rare elsewhere. Texts full of them
# skip language identification, which was a third of the quality stage's time.
ENGLISH_FUNCTION_WORDS = frozenset(
    "the a an and or but if of to in on at by for with from as is are was were be been it its "
    "this that these those you your we our they their he she his her i my me not no do does "
    "did can will would should could have has had there which what when how so than then".split()
)
ENGLISH_MIN_WORDS = 20
ENGLISH_MIN_FUNCTION_WORD_SHARE = 0.25


def looks_english(folded_words: Sequence[str]) -> bool:
    """True when at least a quarter of the (case-folded) words are English function words."""
    if len(folded_words) < ENGLISH_MIN_WORDS:
        return False
    share = sum(map(ENGLISH_FUNCTION_WORDS.__contains__, folded_words)) / len(folded_words)
    return share >= ENGLISH_MIN_FUNCTION_WORD_SHARE


def identify_language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) by py3langid's bundled model."""
    language, probability = _language_identifier().classify(text)
    return str(language), float(probability)


def toxicity_score(words: Sequence[str], text: str, extra: Sequence[str] = ()) -> float:
    """Weighted count of toxic words (TOXIC_WORDS, `extra` at weight 1) and phrases (weight 2)."""
    extra_words = {word.casefold() for word in extra}
    score = sum(
        TOXIC_WORDS.get(word, 1.0 if word in extra_words else 0.0)
        for word in (w.casefold() for w in words)
    )
    return score + 2.0 * len(TOXIC_PHRASES.findall(text))


def quality_reasons(text: str, thresholds: QualityThresholds | None = None) -> list[str]:
    """Reason codes ('quality.<check>') for dropping `text`; [] means keep it."""
    t = thresholds or QualityThresholds()
    prose = prose_of(text)
    words = prose.words
    reasons: list[str] = []
    if len(words) < t.min_words:
        return ["quality.too_few_words"]
    if len(words) > t.max_words:
        reasons.append("quality.too_many_words")
    mean_length = sum(map(len, words)) / len(words)
    if not t.min_mean_word_length <= mean_length <= t.max_mean_word_length:
        reasons.append("quality.mean_word_length")
    symbols = len(_SYMBOL.findall(_HEADING_MARK.sub("", prose.text)))
    if symbols / len(words) > t.max_symbol_word_ratio:
        reasons.append("quality.symbol_ratio")
    characters = re.sub(r"\s", "", prose.text)
    if sum(map(str.isdigit, characters)) / max(len(characters), 1) > t.max_digit_ratio:
        reasons.append("quality.digit_ratio")
    lines = prose.lines
    if sum(bool(_ELLIPSIS_END.search(line)) for line in lines) / len(lines) > (
        t.max_ellipsis_line_fraction
    ):
        reasons.append("quality.ellipsis_lines")
    if len(lines) > 3 and sum(bool(_BULLET.match(line)) for line in lines) / len(lines) > (
        t.max_bullet_line_fraction
    ):
        reasons.append("quality.bullet_lines")
    line_keys = [line.strip().casefold() for line in lines if re.search(r"[^\W\d_]", line)]
    if _duplicate_fraction(line_keys) > t.max_duplicate_line_fraction:
        reasons.append("quality.duplicate_lines")
    paragraphs = [p.strip().casefold() for p in re.split(r"\n\s*\n", prose.text) if p.strip()]
    if _duplicate_fraction(paragraphs) > t.max_duplicate_paragraph_fraction:
        reasons.append("quality.duplicate_paragraphs")
    folded = [word.casefold() for word in words]
    if len(words) >= 15 and len(set(folded)) / len(folded) < t.min_unique_word_fraction:
        reasons.append("quality.repetition")
    elif len(words) >= t.repetition_min_words:
        if any(
            _top_ngram_fraction(folded, n) > limit
            for n, limit in zip((2, 3, 4), t.max_top_ngram_fraction, strict=True)
        ) or (_duplicate_ngram_fraction(folded, 5) > t.max_duplicate_5gram_fraction):
            reasons.append("quality.repetition")
    if len(words) >= t.stop_words_min_words and (
        sum(map(STOP_WORDS.__contains__, folded)) < t.min_stop_words
    ):
        reasons.append("quality.stop_words")
    letters = sum(map(str.isalpha, prose.text))
    if t.languages and letters >= t.language_min_letters:
        if not ("en" in t.languages and looks_english(folded)):
            # The opening is enough to tell a language, and langid's cost grows with length.
            language, probability = identify_language(prose.text[:LANGUAGE_SAMPLE_CHARS])
            if language not in t.languages and probability >= t.min_language_confidence:
                reasons.append("quality.language")
    score = toxicity_score(words, prose.text, t.extra_toxic_words)
    if score >= t.toxic_min_score or (score >= 1 and score / len(words) >= t.toxic_max_ratio):
        reasons.append("quality.toxic")
    return reasons


def filter_quality(texts: pd.Series, thresholds: QualityThresholds | None = None) -> pd.Series:
    """For each text, its reasons joined by ',' ('' = keep); missing texts get
    'quality.too_few_words'."""
    return texts.map(
        lambda text: (
            ",".join(quality_reasons(text, thresholds))
            if isinstance(text, str)
            else "quality.too_few_words"
        )
    )
