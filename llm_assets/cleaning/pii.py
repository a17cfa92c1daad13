"""Redaction of structured identifiers by pattern, each checked where a checksum exists.

Replacements are typed placeholders (`<EMAIL>`, `<PHONE>`, ...) so a model learns where such
values go without ever seeing one.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass


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
    rearranged = compact[4:] + compact[:4]
    as_digits = "".join(str(int(char, 36)) for char in rearranged)
    return len(compact) >= 15 and int(as_digits) % 97 == 1


def _card_is_valid(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    return 13 <= len(digits) <= 19 and luhn_is_valid(digits)


def _ip_is_valid(match: str) -> bool:
    try:
        ipaddress.ip_address(match)
    except ValueError:
        return False
    return True


def _phone_is_plausible(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    # ISO dates and version numbers share the shape of short phone numbers.
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", match.strip()):
        return False
    return 9 <= len(digits) <= 15


@dataclass(frozen=True)
class PiiPattern:
    entity: str
    regex: re.Pattern[str]
    is_valid: Callable[[str], bool] | None = None


# Order is priority when matches overlap: a card number also looks like a phone number.
PII_PATTERNS: tuple[PiiPattern, ...] = (
    PiiPattern(
        "EMAIL",
        re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
    ),
    PiiPattern(
        "IBAN",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
        iban_is_valid,
    ),
    PiiPattern("CREDIT_CARD", re.compile(r"\b\d(?:[ -]?\d){12,18}\b"), _card_is_valid),
    PiiPattern("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    PiiPattern(
        "IP_ADDRESS",
        re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b"),
        _ip_is_valid,
    ),
    PiiPattern(
        "PHONE",
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?"
            r"\d{2,4}(?:[ .-]\d{2,4}){1,4}(?!\w)"
        ),
        _phone_is_plausible,
    ),
)


def find_pii(text: str, entities: Iterable[str]) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, entity) spans, earlier patterns winning overlaps."""
    wanted = set(entities)
    taken: list[tuple[int, int, str]] = []
    for pattern in PII_PATTERNS:
        if pattern.entity not in wanted:
            continue
        for match in pattern.regex.finditer(text):
            start, end = match.span()
            if pattern.is_valid and not pattern.is_valid(match.group()):
                continue
            if any(start < taken_end and taken_start < end for taken_start, taken_end, _ in taken):
                continue
            taken.append((start, end, pattern.entity))
    return sorted(taken)


def redact_pii(text: str, entities: Iterable[str]) -> tuple[str, Counter[str]]:
    """The text with each identifier replaced by `<ENTITY>`, and how many of each were found."""
    spans = find_pii(text, entities)
    counts: Counter[str] = Counter(entity for _, _, entity in spans)
    pieces, cursor = [], 0
    for start, end, entity in spans:
        pieces.append(text[cursor:start])
        pieces.append(f"<{entity}>")
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces), counts
