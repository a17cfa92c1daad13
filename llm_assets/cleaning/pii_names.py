"""Offline detectors for the names of people and of places (street addresses).

Beside spaCy's NER model (`pii_ner`), people are found with gazetteers shipped on PyPI (the
`gender-guesser` first-name dictionary, about 45,000 given names from Europe and beyond, and the
`names` package's US census first and last names) plus rules on capitalisation and context: a
known first name followed by a capitalised word, a title (`Mr`, `Dr.`, `Frau`), or a cue
(`Thanks,` on the line before, `my colleague`, `Dear`, `Customer name:`), a given name that is
no common English word, dialogue speakers and names listed together. `ner_person_span` checks
and trims what the model calls a person. Street addresses here are US/UK number + street name +
suffix (`St`, `Avenue`, `Mews`), UK flats (`Flat 7, Ben Pike`), German `Musterstraße 12`, each
with an optional unit, city and postcode; `pii_structured` adds the other countries' shapes.

The detectors return `(start, end)` character spans; pure functions, no Presidio needed.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources

# Given names that are also ordinary English words: a known surname or a cue must back them up.
AMBIGUOUS_FIRST_NAMES = frozenset(
    """will may max grant mark bill rose art june april august summer dawn joy hope faith grace
    ray guy pat sue chase hunter drew lane miles page case rich frank jack sky crystal ruby
    pearl amber iris ivy holly lily daisy violet autumn winter china georgia virginia jordan
    paris don gene carol sandy dusty rusty cliff brook dale glen heath wade reed rod penny bud
    buck colt duke earl king prince major sonny angel star ginger candy misty storm river forest
    stone early price long young white brown green black gray grey west north south east
    christian sterling lincoln tuesday saturday sunday monday friday march august dean
    victoria patch power mac ace ali bo cole jay sol tom alpha omega delta echo genesis diamond
    emerald golden royal princess queen lady miss junior liberty moon sun spring season temple
    windy marine noble precious angle carry marry desire cherish chance charity honey love
    glory harmony melody mercy patience prudence destiny trinity sunshine sparkle velvet ivory
    jewel coral olive maple willow hazel heather fern flora sage scarlet cherry berry candida
    brain manual numbers german irish easter many man son see so ok in an un dot dimple fairy
    tiny lean lore lady miss marvel nova noble season marine tequila madonna cinderella
    venus victor virgil media asset""".split()
)

# Words that look like given names in the gazetteers but head titles, UI labels and products.
NOT_NAMES = frozenset(
    """the a an hi hey hello dear thanks thank cheers regards best kind warm sincerely please
    our my your their his her its this that these those we i you he she it they team support
    customer client account admin manager product head sales data cloud server windows office
    studio visual code google microsoft chrome firefox safari apple android linux ubuntu tier
    settings security console release notes order invoice patch build click save changes access
    retries timeout single sign error http api sql report platform pro plan premium enterprise
    app apps mobile desktop web login logout signup dashboard repo wiki
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday
    mr mrs ms miss dr prof herr frau sir madam""".split()
)

TITLES = r"(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Madam|Herr|Frau|Fr|Hr|Ing|Dipl\.-Ing|Mag)\.?"
# Relatives and partners, before a name ("my kid Mali") or after one ("Pavia's daughter").
KIN = (
    r"(?:kid|kids|son|daughter|child|wife|husband|partner|spouse|brother|sister|mother|father"
    r"|mom|mum|dad|uncle|aunt|cousin|nephew|niece|grandson|granddaughter|grandmother"
    r"|grandfather|grandma|grandpa|boyfriend|girlfriend|fianc[eé]e?|stepson|stepdaughter)"
)
KIN_BEFORE = re.compile(rf"\b(?:my|your|his|her|our|their)\s+{KIN}[\s,]*$", re.IGNORECASE)
NAME_KINDS = r"(?:first|last|middle|full|maiden|birth|family|given|sur)"
# Things that come before a person's name.
CUE = re.compile(
    r"(?:\b(?:colleague|coworker|co-worker|manager|boss|customer|client|user|agent|technician"
    r"|engineer|contact|name(?:\s+is)?|named|called|this\s+is|i\s+am|i'm|spoke\s+(?:with|to)"
    r"|talked\s+to|speak\s+to|ask|asked|by|to|from|with|behalf\s+of|cc|attn|dear|hi|hello|hey"
    r"|thanks|regards|signed|approved|reported|assigned|escalated|forwarding|contact\s+person)"
    r"[\s:,]*$)",
    re.IGNORECASE,
)
# A name alone on a line after a closing formula: "Thanks,\nJane Doe".
SIGN_OFF = re.compile(
    r"(?:thanks|thank you|regards|best|cheers|sincerely|kind regards|best regards|warm regards"
    r"|many thanks|viele grüße|mit freundlichen grüßen|beste grüße|gruß|grüße),?\s*\n\s*$",
    re.IGNORECASE,
)

# Every Latin letter with a diacritic (Latin-1 Supplement, Extended-A and -B): "Kateřina",
# "Gabryŝ" and "Dvořáčková" are names as much as "José" is.
_LATIN = [chr(code) for code in range(0xC0, 0x250)]
_UPPER = "A-Z" + "".join(char for char in _LATIN if char.isupper())
_LOWER = "a-z" + "".join(char for char in _LATIN if char.islower())
NAME_WORD = (
    rf"(?:[{_UPPER}]['’])?[{_UPPER}]"
    rf"(?:[{_LOWER}]+(?:['’\-][{_UPPER}]?[{_LOWER}]+)*|[{_LOWER}]?[{_UPPER}][{_LOWER}]+)"
)
PARTICLE = r"(?:von|van|de|der|den|du|da|di|del|della|la|le|zu|vom|zur|ten|ter|af|al|bin)"
INITIAL = rf"[{_UPPER}]\."
# Words separated by single spaces (never a newline), optional middle initials and particles.
NAME_RUN = re.compile(
    rf"(?<![\w@.])(?:{TITLES}\s)?(?:{NAME_WORD}|{INITIAL})"
    rf"(?:[ \t]+(?:{PARTICLE}[ \t]+){{0,2}}(?:{TITLES}(?=\s)|{NAME_WORD}|{INITIAL}))*(?![\w@])"
)
_TITLE_ONLY = re.compile(rf"{TITLES}$")
_TOKEN = re.compile(rf"{TITLES}(?=\s)|{NAME_WORD}|{INITIAL}|{PARTICLE}")


def _package_text(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """Lower-cased given names: gender-guesser's dictionary and the US census lists."""
    found: set[str] = set()
    for line in _package_text("gender_guesser", "data/nam_dict.txt").splitlines():
        if line.startswith(("#", "=")) or len(line) < 4:
            continue
        for part in re.split(r"[+\- ]", line[3:29].strip()):
            if len(part) > 1:
                found.add(part.lower())
    for list_name in ("dist.male.first", "dist.female.first"):
        found.update(
            line.split()[0].lower()
            for line in _package_text("names", list_name).split("\n")
            if line
        )
    return frozenset(found - NOT_NAMES)


@lru_cache(maxsize=1)
def last_names(top: int = 25_000) -> frozenset[str]:
    """The `top` most frequent US census surnames, lower-cased (rarer ones are mostly words)."""
    lines = [line for line in _package_text("names", "dist.all.last").split("\n") if line]
    return frozenset(line.split()[0].lower() for line in lines[:top]) - NOT_NAMES


@lru_cache(maxsize=1)
def not_names() -> frozenset[str]:
    """NOT_NAMES and spaCy's English stop words ("Could", "Please" open sentences, not names)."""
    from spacy.lang.en.stop_words import STOP_WORDS

    return NOT_NAMES | frozenset(STOP_WORDS)


def _without_possessive(word: str) -> str:
    """ "Isaac's" -> "Isaac" (a name in the genitive is still a name)."""
    return re.sub(r"['’]s$", "", word)


def fold(word: str) -> str:
    """Lower case without accents: "Fábio" is looked up as "fabio"."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _is_first(word: str) -> bool:
    head = re.split(r"[-’']", word)[0]
    return head.lower() in first_names() or fold(head) in first_names()


def _is_last(word: str) -> bool:
    names = (word.lower(), fold(word))
    return any(name in last_names() or name in first_names() for name in names)


def _is_english(word: str) -> bool:
    """An English word, or a plural or past form of one (WordNet lists base forms)."""
    from llm_assets.cleaning.pii_ner import english_words

    folded = word.lower()
    if "-" in folded.strip("-"):
        return all(map(_is_english, folded.strip("-").split("-")))  # "Sign-On"
    forms = {folded}
    # Only real endings: "boxes" -> "box", "used" -> "use"; "Villads" is no plural of "villa".
    if folded.endswith("s"):
        forms.add(folded[:-1])
    if folded.endswith(("es", "ed")):
        forms |= {folded[:-1], folded[:-2]}
    return not forms.isdisjoint(english_words())


def could_be_name(word: str) -> bool:
    """A capitalised word that is a known name, or at least no English or stop word, and not
    spelled like a product ("DataHub") or a code ("API")."""
    word = _without_possessive(word)
    if len(word) < 2 or not word[0].isupper() or word.isupper() or word.lower() in not_names():
        return False
    if re.search(r"[a-z][A-Z]|['’](?:t|re|ve|ll|d|m)$", word):
        return False  # "DataHub", "Don't"
    if word.lower() in AMBIGUOUS_FIRST_NAMES:
        return False
    return _is_last(word) or not _is_english(word)


@lru_cache(maxsize=1)
def census_first_names() -> frozenset[str]:
    """The US census given names alone (about 5,000), without gender-guesser's long tail."""
    found: set[str] = set()
    for list_name in ("dist.male.first", "dist.female.first"):
        text = _package_text("names", list_name)
        found.update(line.split()[0].lower() for line in text.split("\n") if line)
    return frozenset(found)


def is_standalone_given_name(word: str) -> bool:
    """A word that names a person even alone ("Why is Antti so impulsive?"): a known given
    name that is not also a common word (AMBIGUOUS_FIRST_NAMES, stop words, or an English word
    that is not among the census's common given names: "Asset", "Beer" are out)."""
    from llm_assets.cleaning.pii_ner import english_words

    word = _without_possessive(word)
    folded = word.lower()
    if len(word) < 3 or word.isupper() or not word[0].isupper() or re.search(r"['’]", word):
        return False
    if folded in AMBIGUOUS_FIRST_NAMES or folded in not_names() or not _is_first(word):
        return False
    return folded not in english_words() or folded in census_first_names()


def _is_word(token: str) -> bool:
    return not token.endswith(".") and not re.fullmatch(PARTICLE, token)


def _person_in_run(
    tokens: list[re.Match[str]], before: str, alone: bool = False
) -> tuple[int, int] | None:
    """The (start, end) of a person's name inside one run of capitalised words, if any.
    `alone`: the run fills its line (a signature, the first line of an address block)."""
    words = [token.group() for token in tokens]
    titled = [i for i, w in enumerate(words[:-1]) if _TITLE_ONLY.match(w)]
    has_title = bool(titled)
    if has_title:  # "Dear Dr Wilson": the name starts at the title
        tokens, words = tokens[titled[0] :], words[titled[0] :]
    cue = bool(CUE.search(before)) or bool(SIGN_OFF.search(before))
    strong_cue = (
        bool(SIGN_OFF.search(before))
        or bool(
            re.search(
                r"(?:dear|name\s*(?:is)?\??|attn|this\s+is|called|named(?:\s+(?:him|her|them))?"
                r"|calls?\s+me|starring|featuring)[\s:,\"']*$",
                before,
                re.IGNORECASE,
            )
        )
        or bool(KIN_BEFORE.search(before))
    )
    # Words that name someone: whatever capitalised word follows is their name.
    self_naming = bool(
        re.search(
            rf"(?:\bcalls?\s+me|\b(?:my|his|her|their|your)\s+(?:{NAME_KINDS}\s+)?name\s+is"
            rf"|\b{NAME_KINDS}\s+name\s*(?:[?:]|is\b))[\s:,\"']*$",
            before,
            re.IGNORECASE,
        )
    )
    if _initial_between_names(words):
        return tokens[0].start(), tokens[-1].end()
    if has_title:
        names = [w for w in words[1:] if _is_word(w)]
        if names and all(w.lower() not in NOT_NAMES for w in names):
            return tokens[0].start(), tokens[-1].end()
        return None
    # Drop leading capitalised non-names ("Customer", "Please"), which may themselves be cues.
    start = 0
    while start < len(words) and (
        words[start].lower() in not_names() or not _is_word(words[start])
    ):
        start += 1
        cue = True if start and words[start - 1].lower() in {"dear", "hi", "hello", "hey"} else cue
    rest = words[start:]
    if not rest:
        return None
    last_word = next((w for w in reversed(rest) if _is_word(w)), rest[0])
    end = len(words) - 1
    while end > start and not _is_word(words[end]) and not words[end].endswith("."):
        end -= 1
    span = (tokens[start].start(), tokens[end].end())
    first = rest[0]
    if len([w for w in rest if _is_word(w)]) >= 2:
        if any(w.lower() in not_names() for w in rest if _is_word(w)):
            return None
        if _is_first(first):
            if (
                first.lower() not in AMBIGUOUS_FIRST_NAMES
                or _is_last(last_word)
                or cue
                or strong_cue
            ):
                return span
            return None
        if strong_cue or (cue and (_is_last(last_word) or _is_first(last_word))):
            return span
        # "Carys Morrison from ...", "Breogan Orosco" alone on a line: every word could be a
        # name (none is an English or stop word), and one is a known name or the line is theirs.
        name_words = [w for w in rest if _is_word(w)]
        if all(map(could_be_name, name_words)) and (alone or any(map(_is_last, name_words))):
            return span
        return None
    # A single name: a given name that is no common word, any name-like word after "my name
    # is" or "called", or a given name right after a greeting.
    if is_standalone_given_name(first) or (strong_cue and could_be_name(first)):
        return span
    if self_naming and first.lower() not in not_names():
        return span
    if _is_first(first) and first.lower() not in AMBIGUOUS_FIRST_NAMES and (strong_cue or cue):
        if re.search(
            r"(?:dear|hi|hello|hey|thanks|name\s*(?:is)?|by|with|to)[\s:,]*$", before, re.I
        ):
            return span
        if SIGN_OFF.search(before):
            return span
    return None


def _initial_between_names(words: list[str]) -> bool:
    """ "Muslim R. Ignatieff": a middle initial between a given name and a surname is how
    people, not places or products, are written; the surname must not be an English word."""
    return (
        len(words) == 3
        and re.fullmatch(INITIAL, words[1]) is not None
        and _is_word(words[0])
        and words[0].lower() not in not_names()
        and could_be_name(words[2])
    )


def _kin_of(word: str, after: str) -> bool:
    """ "I'm Pavia's daughter": a possessive before a relative names a person."""
    return (
        re.search(r"['’]s$", word) is not None
        and re.match(rf"\s+{KIN}\b", after, re.IGNORECASE) is not None
        and could_be_name(word)
    )


def find_person_names(text: str) -> list[tuple[int, int]]:
    """Character spans of people's names in `text` (title included when present)."""
    spans: list[tuple[int, int]] = []
    for run in NAME_RUN.finditer(text):
        tokens = list(_TOKEN.finditer(text, run.start(), run.end()))
        if not tokens:
            continue
        line_start = text.rfind("\n", 0, run.start())
        before = text[max(0, run.start() - 40) : run.start()]
        if line_start >= 0 and run.start() - line_start <= 2:
            # The run starts a line: look back over the line break too (sign-offs).
            before = text[max(0, line_start - 40) : run.start()]
        line_end = text.find("\n", run.end())
        after = text[run.end() : line_end if line_end >= 0 else len(text)]
        opening = text[line_start + 1 : run.start()]
        alone = not re.search(r"[\w]", opening) and not re.search(r"\w", after)
        found = _person_in_run(tokens, before, alone)
        if found is None and len(tokens) == 1 and _kin_of(tokens[0].group(), after):
            found = tokens[0].span()
        if found:
            spans.append(found)
    return spans


# USPS street suffixes (and the plurals Faker and real addresses use), UK street types.
STREET_SUFFIXES = """Alley Aly Annex Arcade Avenue Ave Av Bayou Beach Bend Bluff Bluffs Bottom
Boulevard Blvd Branch Bridge Brdg Brook Brooks Burg Burgs Bypass Camp Canyon Cape Causeway
Center Centers
Centre Circle Cir Circles Cliff Cliffs Close Club Common Commons Corner Corners Course Court Ct
Courts Cove Coves Creek Crescent Cres Crest Crossing Crossroad Curve Dale Dam Divide Drive Dr
Drives Estate Estates Expressway Expy Extension Ext Extensions Fall Falls Ferry Field Fields
Flat Flats Ford Fords Forest Forge Forges Fork Forks Fort Freeway Fwy Garden Gardens Gateway
Glen Glens Green Greens Grove Groves Harbor Harbors Haven Heights Hts Highway Hwy Hill Hills
Hollow Inlet Island Islands Isle Junction Junctions Key Keys Knoll Knolls Lake Lakes Land
Landing Lane Ln Light Lights Loaf Lock Locks Lodge Loop Mall Manor Manors Meadow Meadows Mews
Mill Mills Mission Motorway Mount Mountain Mountains Neck Orchard Oval Overpass Park Parks
Parkway Pkwy Parkways Pass Passage Path Pike Pine Pines Place Pl Plain Plains Plaza Point
Points Port Ports Prairie Radial Ramp Ranch Rapid Rapids Rest Ridge Ridges River Road Rd Roads
Route Row Rue Run Shoal Shoals Shore Shores Skyway Spring Springs Spur Spurs Square Sq Squares
Station Stravenue Stream Street St Streets Summit Terrace Ter Throughway Trace Track Trafficway
Trail Trl Trailer Tunnel Turnpike Underpass Union Unions Valley Valleys Via Viaduct View Views
Village Villages Ville Vista Walk Walks Wall Way Ways Well Wells Wharf Yard Yards""".split()
_SUFFIX = "|".join(sorted(STREET_SUFFIXES, key=len, reverse=True))
_STREET_WORD = rf"(?:{NAME_WORD}|\d{{1,3}}(?:st|nd|rd|th)|[NSEW]\.?)"
_UNIT = r"(?:,?\s+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Fl(?:oor)?\.?|Room|Rm\.?|#)\s*#?[\w-]{1,6})"
_CITY = (
    rf"{NAME_WORD}(?:[ \-](?:(?:am|an der|an|im|in der|ob der|bei|sur)\s)?{NAME_WORD})"
    r"{0,3}"
)
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}"
_US_TAIL = rf"(?:,\s*{_CITY},?\s+[A-Z]{{2}}\s+\d{{5}}(?:-\d{{4}})?)"
_UK_TAIL = rf"(?:(?:,\s*{_CITY}){{0,2}},\s*{_UK_POSTCODE}\b)"
_DE_TAIL = rf"(?:,?\s+(?:D-)?\d{{5}}\s+{_CITY})"
_GERMAN_STREET = (
    rf"(?:(?:{NAME_WORD}\s)?{NAME_WORD}(?:-{NAME_WORD})*-?(?:[Ss]tra(?:ß|ss)e|[Ss]tr\.|[Gg]asse|[Ww]eg|[Aa]llee"
    r"|[Pp]latz|[Rr]ing|[Dd]amm|[Uu]fer|[Cc]haussee|[Ss]teig|[Pp]fad|[Mm]arkt|[Kk]ai)"
    r"|(?:Am|An der|Auf dem|Im|Zum|Zur|In der)\s+\w+)"
)

ADDRESS_PATTERNS = (
    # US/UK: 221B Baker Street, Apt 4, Springfield, IL 62704 / 10 Downing St, London, SW1A 2AA
    re.compile(
        rf"\b\d{{1,6}}[A-Za-z]?(?:-\d{{1,4}})?,?\s+(?:{_STREET_WORD}\s+){{1,4}}(?:{_SUFFIX})\b\.?"
        rf"{_UNIT}?(?:{_US_TAIL}|{_UK_TAIL}|(?:,\s*{_CITY})(?=\s*$))?"
    ),
    # UK flats: Flat 7, Ben Pike, Willisburgh, L0U 8XJ
    re.compile(
        rf"\b(?:Flat|Studio|Apartment|Unit|Suite)\s+\d{{1,4}}[A-Za-z]?,?\s+"
        rf"(?:{_STREET_WORD}\s+){{1,4}}(?:{_SUFFIX})\b(?:{_UK_TAIL}|{_US_TAIL})?"
    ),
    # German: Rose-Krebs-Straße 7, 63608 Zschopau / Drewesgasse 7/6
    re.compile(
        rf"\b{_GERMAN_STREET}\s+\d{{1,5}}\s?[a-z]?(?:\s?[-/]\s?\d{{1,5}}[a-z]?)?\b{_DE_TAIL}?"
    ),
)


def find_street_addresses(text: str) -> list[tuple[int, int]]:
    """Character spans of street addresses (US, UK and German shapes) in `text`."""
    spans: list[tuple[int, int]] = []
    for pattern in ADDRESS_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            while end > start and text[end - 1] in " ,":
                end -= 1
            spans.append((start, end))
    return spans


_NER_TOKEN = re.compile(r"[^\W\d_][\w'’.\-]*")


# Words before the name of a button, menu or setting in product documentation.
_UI_ACTION = re.compile(
    r"(?i:\b(?:click|tap|press|select|choose|open|enable|disable|toggle|under|menu|button)"
    r"(?:\s+on)?)[\s:>→]*$"
)


def _name_like(word: str) -> bool:
    return bool(_TITLE_ONLY.fullmatch(word)) or _is_last(word) or could_be_name(word)


def ner_person_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The part of a PERSON span from the NER model that looks like a person's name, or None.

    Leading words that cannot be names are trimmed ("Producer Leokadia Sokołowska" ->
    "Leokadia Sokołowska", "Upgrade Zendesk" -> "Zendesk"). Rejected: spans
    with digits or '@', all-capital single words (codes, towns in addresses), NOT_NAMES and
    stop words, titles made of English words ("Guilty Pleasures"), labels ("Lieferadresse:"),
    and a single common word that opens a sentence ("Will the Pro plan ...").
    """
    tokens = list(_NER_TOKEN.finditer(text, start, end))
    if not tokens or re.search(r"[\d@/_<>#]", text[start:end]):
        return None
    while tokens and not _name_like(tokens[0].group()):
        tokens.pop(0)
    if not tokens:
        return None
    start, end = tokens[0].start(), tokens[-1].end()
    words = [token.group() for token in tokens]
    if all(word.lower().strip(".") in not_names() for word in words):
        return None
    if any(word.lower() in NOT_NAMES for word in words if not _TITLE_ONLY.fullmatch(word)):
        return None
    if len(words) > 1:
        if not any(map(_is_last, words)) and all(map(_is_english, words)):
            return None  # "Guilty Pleasures", "Princess Royal": a title, not a person
        return start, end
    word = words[0]
    if (word.isupper() and len(word) > 1) or word.lower() in not_names():
        return None
    if re.match(r"\s*:", text[end:]) and re.search(r"(?:^|\n)\W*$", text[:start]):
        return None  # a label ("Lieferadresse:"); dialogue speakers: `find_speakers`
    if _UI_ACTION.search(text[max(0, start - 20) : start]):
        return None  # "click Unlink", "select Rewind": a button, not a person
    opens = re.search(r"(?:^|[.!?:]\s+|\n\s*)$", text[:start]) is not None
    if word.lower() in AMBIGUOUS_FIRST_NAMES:
        return None if opens else (start, end)
    # Known names, or a word the gazetteers do not know ("Chichigov") that is no English word
    # and no product-style CamelCase ("DataHub").
    return (start, end) if _is_last(word) or could_be_name(word) else None


def distinctive_name_word(word: str) -> bool:
    """A word that names someone even out of context: a given name that is no common word, or
    a name-like word that is no English word ("Run" is a surname, but also a verb)."""
    return is_standalone_given_name(word) or (could_be_name(word) and not _is_english(word))


# "Nicole: Remember me" - a speaker's name opening a line of dialogue.
SPEAKER = re.compile(rf"^[ \t>]*({NAME_WORD})(?=[ \t]*:[ \t]*\S)", re.M)
# Names listed with a found name: "founders: Longo, Boyes and Kruger".
_LIST_AFTER = re.compile(rf"(?:,[ \t]*|,?[ \t]+(?:and|or|&)[ \t]+)({NAME_WORD})(?![\w@])")
_LIST_BEFORE = re.compile(rf"(?<![\w@])({NAME_WORD})(?:,[ \t]*|,?[ \t]+(?:and|or|&)[ \t]+)$")


def find_speakers(text: str) -> list[tuple[int, int]]:
    """Names of speakers at the start of dialogue lines ("Keira: Remember me?"): known given
    names, or other name-like words when two or more lines open that way (a single
    "Lieferadresse:" is a label, not a speaker)."""
    found = [match for match in SPEAKER.finditer(text) if match.group(1).lower() not in not_names()]
    dialogue = len(found) >= 2
    return [
        match.span(1)
        for match in found
        if _is_first(match.group(1)) or (dialogue and could_be_name(match.group(1)))
    ]


def names_listed_with(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Words in a list ("A, B and C") with one of the given name spans that could be names."""
    found: set[tuple[int, int]] = set()
    frontier = list(spans)
    while frontier:
        start, end = frontier.pop()
        after = _LIST_AFTER.match(text, end)
        before = _LIST_BEFORE.search(text[max(0, start - 60) : start])
        candidates = []
        if after:
            candidates.append(after.span(1))
        if before:
            offset = max(0, start - 60)
            candidates.append((offset + before.start(1), offset + before.end(1)))
        for span in candidates:
            if span not in found and span not in spans and could_be_name(text[span[0] : span[1]]):
                found.add(span)
                frontier.append(span)
    return sorted(found)
