"""Text normalization: repaired Unicode, tidy whitespace, optional contraction expansion and a
terminology map, and the key that exact dedup compares.

Indentation and everything inside fenced code blocks are kept: documentation and source files
carry code whose meaning depends on its whitespace.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Mapping

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_INDENT = re.compile(r"^[ \t]*")
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_FENCE = re.compile(r"^[ \t]*(```|~~~)")

CONTRACTIONS = {
    "can't": "cannot",
    "won't": "will not",
    "shan't": "shall not",
    "ain't": "is not",
    "let's": "let us",
    "i'm": "I am",
    "it's": "it is",
    "that's": "that is",
    "there's": "there is",
    "what's": "what is",
    "who's": "who is",
    "he's": "he is",
    "she's": "she is",
}
_SUFFIXES = {"n't": " not", "'re": " are", "'ve": " have", "'ll": " will", "'d": " would"}


# What ftfy can change in plain ASCII: HTML entities, control characters, terminal escapes.
_ASCII_REPAIRABLE = re.compile(r"[&\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _may_need_repair(text: str) -> bool:
    """ftfy costs as much as the rest of normalization; most texts are ASCII it leaves alone."""
    return not text.isascii() or bool(_ASCII_REPAIRABLE.search(text))


def normalize_text(text: str, repair_unicode: bool = True) -> str:
    """Mojibake repaired (ftfy) and NFC; outside code blocks, runs of spaces after the indentation
    collapsed; trailing spaces removed; at most one blank line in a row."""
    if repair_unicode and _may_need_repair(text):
        import ftfy

        text = ftfy.fix_text(text, normalization="NFC")
    elif not text.isascii():
        text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines, in_code = [], False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
        if in_code:
            lines.append(line.rstrip())
            continue
        indent = _INDENT.match(line).group()  # type: ignore[union-attr]
        lines.append(indent + _SPACES.sub(" ", line[len(indent) :]).rstrip())
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def _match_case(original: str, replacement: str) -> str:
    return replacement[0].upper() + replacement[1:] if original[0].isupper() else replacement


def expand_contractions(text: str) -> str:
    """ "can't" -> "cannot", "we're" -> "we are", keeping a capital at the start of a word."""
    text = text.replace("’", "'") if "’" in text else text

    def whole(match: re.Match[str]) -> str:
        word = match.group()
        expanded = CONTRACTIONS[word.casefold()]
        return expanded if expanded.startswith("I ") else _match_case(word, expanded)

    text = _WHOLE_CONTRACTION.sub(whole, text)
    return _SUFFIX_CONTRACTION.sub(lambda m: m.group(1) + _SUFFIXES[m.group(2).casefold()], text)


_WHOLE_CONTRACTION = re.compile(
    r"\b(?:" + "|".join(re.escape(word) for word in CONTRACTIONS) + r")\b", re.IGNORECASE
)
_SUFFIX_CONTRACTION = re.compile(r"\b([A-Za-z]+)(n't|'re|'ve|'ll|'d)\b", re.IGNORECASE)


@functools.lru_cache(maxsize=8)
def _terminology_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = sorted(terms, key=len, reverse=True)
    return re.compile(
        r"(?<!\w)(?:" + "|".join(re.escape(term) for term in alternatives) + r")(?!\w)",
        re.IGNORECASE,
    )


def apply_terminology(text: str, terminology: Mapping[str, str]) -> str:
    """Replace each term (whole words, any case) by its preferred form, e.g. 'e-mail' -> 'email'."""
    if not terminology:
        return text
    preferred = {term.casefold(): value for term, value in terminology.items()}
    pattern = _terminology_pattern(tuple(terminology))
    return pattern.sub(lambda match: preferred[match.group().casefold()], text)


def dedup_key(*parts: object) -> str:
    """Hash of the case-folded, whitespace-collapsed content: re-sends that differ only in case or
    spacing count as the same record. Missing parts (None, NaN) count as empty."""
    texts = (part if isinstance(part, str) else "" for part in parts)
    joined = "\x00".join(re.sub(r"\s+", " ", text).strip().casefold() for text in texts)
    return hashlib.sha256(joined.encode()).hexdigest()
