"""Text normalization: repaired Unicode, tidy whitespace, and the key that exact dedup compares."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")


def normalize_text(text: str, repair_unicode: bool = True) -> str:
    """Mojibake repaired (ftfy), NFC, runs of spaces collapsed, at most one blank line in a row."""
    if repair_unicode:
        import ftfy

        text = ftfy.fix_text(text, normalization="NFC")
    else:
        text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def dedup_key(*parts: object) -> str:
    """Hash of the case-folded, whitespace-collapsed content: re-sends that differ only in case or
    spacing count as the same record. Missing parts (None, NaN) count as empty."""
    texts = (part if isinstance(part, str) else "" for part in parts)
    joined = "\x00".join(re.sub(r"\s+", " ", text).strip().casefold() for text in texts)
    return hashlib.sha256(joined.encode()).hexdigest()
