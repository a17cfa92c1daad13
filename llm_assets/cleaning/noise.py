"""Noise removal: leftover markup, quoted replies, email signatures, spoken fillers, and lines
repeated across many documents of one source (navigation, feedback widgets, copyright lines).

Each step is a plain function from text to text; `remove_noise` runs the chosen steps over a
DataFrame column and counts how many records each step changed.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

NOISE_STEPS = ("markup", "quoted_reply", "signature", "filler", "boilerplate")

# Only real HTML tag names: placeholders such as `aurora restore "<path>"` are content.
_HTML_TAGS = (
    "a|abbr|b|blockquote|body|br|center|code|dd|div|dl|dt|em|font|h[1-6]|head|hr|html|i|img|li|"
    "ol|p|pre|s|small|span|strike|strong|sub|sup|table|tbody|td|tfoot|th|thead|tr|tt|u|ul"
)
_BREAK_TAG = re.compile(r"<\s*(?:br|hr)\s*/?\s*>|<\s*/?\s*(?:p|div|li|tr|h[1-6])\b[^<>]*>", re.I)
_OTHER_TAG = re.compile(rf"<\s*/?\s*(?:{_HTML_TAGS})\b[^<>]*>", re.I)
_ENTITY = re.compile(r"&(?:[a-zA-Z]{2,8}|#\d{1,6}|#x[0-9a-fA-F]{1,6});")

_REPLY_HEADER = re.compile(
    r"^[> ]*(?:On\s.{6,200}?\swrote:|-{2,}\s*Original Message\s*-{2,}|From:\s.+\nSent:\s.+)\s*$",
    re.M | re.I,
)
_QUOTED_TAIL = re.compile(r"(?:\n[ \t]*>[^\n]*)+\s*\Z")

_SIGNATURE_DELIMITER = re.compile(r"^--[ \t\r]*$", re.M)
_SENT_FROM = re.compile(r"^[ \t]*Sent from my [\w .-]+$\n?", re.M | re.I)
_VALEDICTIONS = (
    "thanks|thank you|many thanks|thanks again|cheers|best|best regards|kind regards|"
    "regards|warm regards|sincerely|all the best|br"
)
# Any run of spaces between the words, and a stray carriage return at the end: a re-sent ticket
# whose sign-off differs only in spacing must lose the same signature as the original.
_VALEDICTION = re.compile(
    r"^[ \t]*(?:" + _VALEDICTIONS.replace(" ", r"[ \t]+") + r")[ \t]*[,.!]?[ \t\r]*$",
    re.M | re.I,
)
_MAX_SIGNATURE_LINES = 4

_FILLER = r"(?:um+|uh+|erm+|uhm+|umm+)"
_SENTENCE_START = r"(?:(?<=^)|(?<=[.!?]\s)|(?<=\n))"
# Fillers opening a sentence; the word after them is capitalized again.
_LEADING_FILLERS = re.compile(
    _SENTENCE_START
    + r"(?:"
    + r"(?:so,?\s+)?(?:like,\s+)?you know,\s+"
    + rf"|{_FILLER}\s+yeah,?\s+so,?\s+"
    + rf"|{_FILLER},?\s+so\s+basically,?\s+"
    + rf"|so,?\s+{_FILLER},?\s+"
    + rf"|{_FILLER},?\s+"
    + r")(?P<next>\w)",
    re.I | re.M,
)
_INNER_FILLERS = (
    (re.compile(rf"(\w),\s*{_FILLER},\s*", re.I), r"\1 "),  # "and, uh, they" -> "and they"
    (re.compile(r",\s*(?:like,\s*)?you know(?=[.!?,;])", re.I), ""),  # "..., you know." -> "..."
    (re.compile(rf"\s+{_FILLER}\b,?(?=\s)", re.I), ""),  # "so um we" -> "so we"
)


def remove_markup(text: str) -> str:
    """HTML tags left in plain text (<br>, <p>, ...) turned into line breaks or removed, and
    entities (&nbsp;, &amp;, &#39;) decoded; angle-bracket placeholders are kept."""
    if not (_BREAK_TAG.search(text) or _OTHER_TAG.search(text) or _ENTITY.search(text)):
        return text
    text = _BREAK_TAG.sub("\n", text)
    text = _OTHER_TAG.sub("", text)
    text = _ENTITY.sub(lambda match: html.unescape(match.group()), text)
    text = text.replace("\u00a0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def remove_quoted_replies(text: str) -> str:
    """The quoted earlier message of an email reply removed: from an 'On <date>, <name> wrote:'
    (or 'Original Message') header to the end, or a block of '>' lines closing the text.
    '>' lines in the middle (Markdown block quotes) are kept."""
    cut = len(text)
    header = _REPLY_HEADER.search(text)
    if header and header.start() > 0:
        cut = header.start()
    tail = _QUOTED_TAIL.search(text[:cut])
    if tail and tail.start() > 0:
        cut = tail.start()
    return text if cut == len(text) else text[:cut].rstrip()


def remove_signature(text: str) -> str:
    """An email signature closing the text removed: everything after a '--' line, 'Sent from my
    iPhone' lines, and a closing 'Thanks,' / 'Kind regards,' line with up to four short lines
    (name, title, company, phone) after it."""
    original = text
    delimiter = _SIGNATURE_DELIMITER.search(text)
    if delimiter and delimiter.start() > 0:
        text = text[: delimiter.start()]
    text = _SENT_FROM.sub("", text)
    lines = text.rstrip().split("\n")
    for position in range(max(len(lines) - _MAX_SIGNATURE_LINES - 1, 1), len(lines)):
        tail = lines[position + 1 :]
        if _VALEDICTION.match(lines[position]) and all(len(line) <= 80 for line in tail):
            return "\n".join(lines[:position]).rstrip()
    return original if text == original else text.rstrip()


def remove_fillers(text: str) -> str:
    """Spoken fillers removed ('um', 'uh', 'erm', 'like, you know', 'you know' set off by
    commas), keeping words that contain them ('umbrella', 'user') and 'let you know'."""
    text = _LEADING_FILLERS.sub(_capitalize_after_filler, text)
    for pattern, replacement in _INNER_FILLERS:
        text = pattern.sub(replacement, text)
    return text


def _capitalize_after_filler(match: re.Match[str]) -> str:
    # "Um so basically users get" -> "Users get"; a lower-case filler (chat style) stays so.
    rest = match.group("next")
    return rest.upper() if match.group()[0].isupper() else rest


def line_document_counts(texts: Iterable[str]) -> Counter[str]:
    """In how many of the texts each prose line (case-folded, spaces collapsed) appears."""
    seen: Counter[str] = Counter()
    for text in texts:
        seen.update({key for _, key in _prose_lines(text.split("\n"))})
    return seen


def select_boilerplate(
    counts: Mapping[str, int], texts: int, min_fraction: float = 0.3, min_documents: int = 10
) -> set[str]:
    """Lines of `counts` found in at least `min_fraction` of `texts` texts and in at least
    `min_documents` of them. Lines with fewer than two words or no letters (code fences, table
    rules, blank lines) never count."""
    needed = max(min_documents, min_fraction * texts)
    return {
        line
        for line, count in counts.items()
        if count >= needed and len(line.split()) >= 2 and re.search(r"[^\W\d_]", line)
    }


def boilerplate_lines(
    texts: Sequence[str], min_fraction: float = 0.3, min_documents: int = 10
) -> set[str]:
    """The lines repeated across `texts` (see `select_boilerplate`)."""
    return select_boilerplate(line_document_counts(texts), len(texts), min_fraction, min_documents)


class FrequentLines:
    """Document counts of lines over a stream of batches in bounded memory.

    Misra-Gries with weights: at most `capacity` lines are tracked; when a batch brings more,
    every count drops by the smallest one and lines at zero are forgotten. A count is then never
    above the true one and at most (documents seen so far) / capacity below it, so a line in
    30% of a million documents is found with the default capacity.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self.counts: Counter[str] = Counter()
        self.texts = 0

    def add(self, counts: Mapping[str, int], texts: int) -> None:
        self.texts += texts
        self.counts.update(counts)
        if len(self.counts) > self.capacity:
            floor = sorted(self.counts.values(), reverse=True)[self.capacity]
            self.counts = Counter(
                {line: count - floor for line, count in self.counts.items() if count > floor}
            )

    def boilerplate(self, min_fraction: float, min_documents: int) -> set[str]:
        return select_boilerplate(self.counts, self.texts, min_fraction, min_documents)


def _line_key(line: str) -> str:
    return re.sub(r"\s+", " ", line).strip().casefold()


def _prose_lines(lines: list[str]) -> list[tuple[int, str]]:
    """(position, key) of the lines outside Markdown code fences: code repeats legitimately."""
    prose = []
    in_code = False
    for position, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        elif not in_code:
            prose.append((position, _line_key(line)))
    return prose


def remove_boilerplate_lines(text: str, boilerplate: set[str]) -> str:
    """`text` without the lines in `boilerplate` (as returned by `boilerplate_lines`)."""
    if not boilerplate:
        return text
    lines = text.split("\n")
    drop = {position for position, key in _prose_lines(lines) if key in boilerplate}
    kept = [line for position, line in enumerate(lines) if position not in drop]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


PER_TEXT_STEPS = {
    "markup": remove_markup,
    "quoted_reply": remove_quoted_replies,
    "signature": remove_signature,
    "filler": remove_fillers,
}


def remove_noise(
    records: pd.DataFrame,
    column: str = "text",
    steps: Sequence[str] = NOISE_STEPS,
    boilerplate_min_fraction: float = 0.3,
    boilerplate_min_documents: int = 10,
    boilerplate: Mapping[str, set[str]] | None = None,
) -> tuple[pd.Series, dict[str, int]]:
    """The column's texts with the chosen `steps` applied in the order of NOISE_STEPS, and for
    each step ('noise.<step>') how many records it changed. Missing values stay missing;
    boilerplate lines are found per `source` among these records, unless `boilerplate` gives
    them per source (found over a whole stream, see `FrequentLines`)."""
    unknown = sorted(set(steps) - set(NOISE_STEPS))
    if unknown:
        raise ValueError(f"unknown noise steps {unknown}: choose from {list(NOISE_STEPS)}")
    texts = records[column].copy()
    present = texts.map(lambda value: isinstance(value, str))
    counts: dict[str, int] = {}
    for step in NOISE_STEPS:
        if step not in steps:
            continue
        before = texts[present]
        if step == "boilerplate":
            after = before.copy()
            for source, group in before.groupby(records.loc[present, "source"], sort=False):
                common = (
                    boilerplate.get(str(source), set())
                    if boilerplate is not None
                    else boilerplate_lines(
                        group.tolist(), boilerplate_min_fraction, boilerplate_min_documents
                    )
                )
                after[group.index] = [remove_boilerplate_lines(t, common) for t in group]
        else:
            after = before.map(PER_TEXT_STEPS[step])
        counts[f"noise.{step}"] = int((after != before).sum())
        texts[present] = after
    return texts, counts
