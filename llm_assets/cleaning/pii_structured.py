"""Detectors for international structured identifiers: street addresses, postal codes next to
them, phone numbers announced by a context word, driver's licence and passport numbers.

`pii_names` knows the US/UK/German shapes of an address (number first, a street suffix). Most of
Europe and Latin America write the street name first and the house number after it, often with
the street type glued on (`Rhinstrasse 91`, `Glynitveien 218`, `Norðurbraut 27`) or in front
(`Via Nazario Sauro 112`, `Rua Doutor Afrânio Junqueira 1460`, `ul. Długa 5`), and some streets
carry no type at all (`Männi 12`). So a street line is accepted when:

- its words carry a street type of one of many languages (no other evidence needed), or
- it is a bare `Name 12` and something says it is an address: a cue before it (`address`,
  `lives at`, `ship to`), or a postal code and town after it (`, 46841 Castelló`).

A postal code counts only next to an address (at most a few capitalised words, such as the town
and country, in between) or after a cue (`ZIP`, `postcode`, `PLZ`). Licence and passport numbers
always need their cue words: alone they are indistinguishable from order or ticket numbers.

All functions take a text and return `(start, end, entity)` spans; no Presidio needed.
"""

from __future__ import annotations

import re

from llm_assets.cleaning.pii_names import find_street_addresses

# Street types written before the name ("Via Roma 12", "Rue de la Paix").
STREET_PREFIXES = r"""Via Viale Vicolo Piazza Piazzale Corso Largo Strada Contrada Calle Carrer
Avenida Avinguda Av\. Avda\. Plaza Plaça Paseo Passeig Camino Carretera Ronda Travesía Rua Rúa
Travessa Estrada Praça Alameda Rodovia Rue Avenue Boulevard Bd Chemin Allée Impasse Quai Route
Place Cours Faubourg Ul\. ul\. Ulica ulica Aleja aleja Al\. al\. Plac Osiedle Sokak Cadde
Caddesi Bulevar Bulevardi Strada Str\. Odos Leoforos C/ Servidão Beco Vila Loteamento""".split()
# Endings of words that name a street in Germanic, Nordic, Baltic, Slavic and Finnic languages.
STREET_ENDINGS = r"""stra(?:ß|ss)e str\. gasse weg allee platz ring damm ufer steig pfad markt
kai chaussee straat laan gracht plein kade singel dijk steeg vej gade allé stræde plads veien
vegen vei gata gaten gate vägen väg gatan gränd torget braut gata vegur stræti stígur tie katu
kuja polku raitti kaari tänav põik mantee utca út tér körút ulica cesta ulice třída náměstí
trg""".split()
# Street types written as their own word after the name ("Fő utca 5", "Teréz krt. 28.").
STREET_WORDS_AFTER = r"""utca u\. út krt\. körút tér tänav põik iela gatve g\. sokak sk\.""".split()
UNITS = r"(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Fl\.|Floor|Rm\.?|Room|Box|App\.?|Whg\.?)"

_PREFIX = "|".join(sorted(STREET_PREFIXES, key=len, reverse=True))
_ENDING = "|".join(sorted(STREET_ENDINGS, key=len, reverse=True))
_WORD_AFTER = "|".join(sorted(STREET_WORDS_AFTER, key=len, reverse=True))
# "12", "12a", "7/6", "58-37", and Hungary's ordinal "93." before a comma or line end.
_HOUSE_NUMBER = (
    r"\d{1,5}(?:\s?[A-Za-z](?![\w]))?(?:\s?[-/]\s?\d{1,5}[A-Za-z]?)?(?:\.(?=[ \t]*(?:[,\n]|$)))?"
)
# A capitalised word of any script (Greek, Cyrillic included) or a short lower-case particle.
_ANY_CAPITALISED = r"(?:[^\W\d_a-z][\w'’.\-]*)"
_PARTICLE = (
    r"(?:de|del|de la|da|do|dos|das|di|degli|dei|della|van|von|der|du|des|le|la|e|y|z|na|u|pod"
    r"|nad|pri|ob)"
)
_STREET_NAME = rf"{_ANY_CAPITALISED}(?:\s(?:{_PARTICLE}\s)?{_ANY_CAPITALISED}){{0,3}}"

# "Via Nazario Sauro 112", "Rua Doutor Afrânio Junqueira 1460", "ul. Długa 5"
PREFIXED_STREET = re.compile(
    rf"(?<![\w.])(?:{_PREFIX})\s(?:{_PARTICLE}\s)?{_STREET_NAME}(?:,)?\s{_HOUSE_NUMBER}(?!\d)"
)
# "96 rue de Penthièvre", "18 Rue de bayrout", "12, avenue Foch"
NUMBER_FIRST_PREFIXED = re.compile(
    rf"(?<![\w.,])\d{{1,5}}[A-Za-z]?,?\s(?i:{_PREFIX})\s(?:{_PARTICLE}\s)*[\w'’\-]+"
    rf"(?:\s(?:{_PARTICLE}\s)?{_ANY_CAPITALISED}){{0,3}}"
)
# "Rhinstrasse 91", "Glynitveien 218", "Karu põik 61", "Fő utca 5"
SUFFIXED_STREET = re.compile(
    rf"(?<![\w.])(?:{_ANY_CAPITALISED}[\s-])?(?:{_ANY_CAPITALISED}[\s-])?"
    rf"[^\W\d_][\w'’\-]*?(?i:{_ENDING})\s{_HOUSE_NUMBER}(?!\d)"
    rf"|(?<![\w.])(?:{_ANY_CAPITALISED}\s){{1,2}}(?i:{_ENDING}|{_WORD_AFTER})\s{_HOUSE_NUMBER}(?!\d)"
    # number first: "21 Norrbyvägen", "47 Massbyntie"
    rf"|(?<![\w.,])\d{{1,5}}[A-Za-z]?\s(?:{_ANY_CAPITALISED}\s)?[^\W\d_][\w'’\-]*?(?i:{_ENDING})(?!\w)"
)
# A bare "Männi 12" / "12 Männi": only with a cue or a postal code and town after it.
BARE_STREET = re.compile(
    rf"(?<![\w.])(?:{_STREET_NAME}\s{_HOUSE_NUMBER}|\d{{1,5}}[A-Za-z]?\s{_STREET_NAME})(?![\w.]\w)"
)
ADDRESS_CUE = re.compile(
    r"(?i:address(?:e)?|adresse|anschrift|lives?\s+(?:at|on|in)|lived\s+(?:at|in|on)"
    r"|live\s+(?:at|in)|moved\s+to|ship(?:ped)?\s+to|send\s+(?:it\s+|them\s+)?to|sent\s+to"
    r"|deliver(?:ed)?\s+to|located\s+at|office\s+is\s+at|meet(?:\s+(?:me|you))?\s+at"
    r"|taxi\s+to|return\s+to|arrived\s+at|is\s+at|are\s+at|it's\s+in|it\s+is|billing|shipping"
    r"|\bat)(?:\s+(?:is|was|will\s+be))?[\s:,]*$"
)
UNIT = re.compile(rf"(?<![\w.]){UNITS}\s?#?\s?\d{{1,5}}[A-Za-z]?(?![\w])")
POSTAL_CODE = re.compile(
    r"(?<![\w.,/-])(?:\d{5}-\d{3,4}|\d{4}-\d{3}|\d{2}-\d{3}|\d{3}\s\d{2}|\d{4}\s?[A-Z]{2}(?![a-z])"
    r"|[A-Z]\d[A-Z]\s?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}|[A-Z]{1,2}-?\d{4,5}|\d{3,6})"
    r"(?![\w-]|[.,]\d)"
)
POSTAL_CUE = re.compile(
    r"(?i:zip(?:\s*code)?|post(?:al)?\s*code|postcode|plz|cap|c\.p\.|code\s+postal)"
    r"(?:\s+is)?[\s:#]*$"
)
# Between an address and its postal code: towns, states, countries, commas, line breaks.
_PLACE_WORDS = re.compile(r"[\s,>?]*(?:[^\W\d_a-z][\w'’.\-]*[\s,>?]*){0,5}")
PLACE_GAP = 80
PHONE_CUE = re.compile(
    r"(?i:phone|tel|telephone|mobile|cell|fax|desk|office|call(?:\s+(?:me|us))?(?:\s+(?:on|at))?"
    r"|reach\s+(?:me|us)\s+(?:on|at)|answering\s+at|number\s*(?:is|:)|whatsapp|sms|handy"
    r"|registered|dial|ring\s+(?:me|us)?\s*(?:on|at)?|messages?\s+(?:to|at|on)|texts?\s+to"
    r"|contact(?:ed)?\s+(?:me\s+|us\s+)?(?:on|at)|text\s+(?:me|us)\s+(?:on|at))\b[\s:.\-]*(?:\n\s*)?$"
)
PHONE_AFTER_CUE = re.compile(
    r"(?<![\w+.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]\d{2,8}){0,5}"
    r"(?!\w|-\d|\.\d)"
)
PHONE_LABEL_AFTER = re.compile(r"^\s*-?\s*(?i:office|fax|mobile|cell|home|work)\b")
MIN_CUED_PHONE_DIGITS = 6
_DATE_START = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}")
DRIVER_LICENSE_CUE = re.compile(
    r"(?i:driver'?s?\s+licen[cs]e|driving\s+licen[cs]e|licen[cs]e\s+(?:number|no\.?|#)"
    r"|\bDL\b|führerschein(?:nummer)?|permis\s+de\s+conduire)"
    r"(?:\s+(?:number|no\.?|#|nr\.?|id))?(?:\s+(?:is|was|:))?[\s:#=]*$"
)
PASSPORT_CUE = re.compile(
    r"(?i:passport|reisepass|passeport|pasaporte|passaporto)"
    r"(?:\s+(?:number|no\.?|#|nr\.?|id))?(?:\s+(?:is|was|:))?[\s:#=]*$"
)
ID_NUMBER = re.compile(r"(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,19}(?![\w-])")
PASSPORT_NUMBER = re.compile(r"(?=[A-Z0-9]*\d)[A-Z0-9]{6,9}(?![\w-])")
_CUE_WINDOW = 40
_CALENDAR = re.compile(
    r"(?i)\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|monday|tuesday|wednesday"
    r"|thursday|friday|saturday|sunday|q[1-4]|version|v|build|release|page|step|chapter)\b"
)

Span = tuple[int, int, str]


def _before(text: str, start: int, window: int = _CUE_WINDOW) -> str:
    return text[max(0, start - window) : start]


# After a street line, before its postal code: units, towns, states, countries (an address
# block: "876 Spojovací\n Suite 390\n Trebelovice\n Czech Republic 675 32").
_BLOCK_TO_CODE = re.compile(
    rf"[ \t]*[,\n](?:[\s,>?]*(?:{UNITS}\s?#?\s?\d{{1,5}}[A-Za-z]?|[^\W\d_][\w'’.\-]*)){{0,6}}"
    r"[\s,>?]*(?:[A-Z]{1,2}-)?(?:\d{4,5}(?:-\d{3,4})?|\d{3} \d{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d"
    r"|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})(?![\w.-])"
)


def _postal_code_follows(text: str, end: int) -> bool:
    """A postal code after `end`, with only units and place names between: ", 46841 Castelló",
    "\n1400 SKI", or the last line of an address block."""
    return bool(_BLOCK_TO_CODE.match(text[end : end + 120]))


def _street_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of street lines in any of the shapes above, with a trailing unit."""
    found = [m.span() for m in PREFIXED_STREET.finditer(text)]
    found += [m.span() for m in NUMBER_FIRST_PREFIXED.finditer(text)]
    found += [m.span() for m in SUFFIXED_STREET.finditer(text)]
    found += find_street_addresses(text)
    for match in BARE_STREET.finditer(text):
        start, end = match.span()
        if _CALENDAR.search(match.group()):
            continue  # "March 16, 2018" is a date, not Männi 12, 45429 Mustoja
        if ADDRESS_CUE.search(_before(text, start)) or _postal_code_follows(text, end):
            found.append((start, end))
    return found


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def find_addresses(text: str) -> list[Span]:
    """Street lines (ADDRESS), units beside them, and postal codes next to them (POSTAL_CODE)."""
    if not any(char.isdigit() for char in text):
        return []
    streets = _merge(_street_lines(text))
    spans: list[Span] = [(start, end, "ADDRESS") for start, end in streets]
    for match in UNIT.finditer(text):
        spans.append((match.start(), match.end(), "ADDRESS"))
    taken = [(start, end) for start, end, _ in spans]
    for match in POSTAL_CODE.finditer(text):
        start, end = match.span()
        if any(s <= start < e for s, e in taken):
            continue
        if POSTAL_CUE.search(_before(text, start, 20)) or _near_address(text, start, end, taken):
            spans.append((start, end, "POSTAL_CODE"))
    return sorted(spans)


def _near_address(text: str, start: int, end: int, addresses: list[tuple[int, int]]) -> bool:
    """Whether only place names separate this code from an address before or after it."""
    for a_start, a_end in addresses:
        if 0 <= start - a_end <= PLACE_GAP and _PLACE_WORDS.fullmatch(text[a_end:start]):
            return True
        if 0 <= a_start - end <= 3 and re.fullmatch(r"[\s,]*", text[end:a_start]):
            return True
    return False


def find_cued_phone_numbers(text: str) -> list[Span]:
    """Phone numbers of 6+ digits right after a cue ("Phone:", "call me on") or before a label
    ("-Office", " fax"): short national numbers that the region matchers do not accept."""
    spans: list[Span] = []
    for match in PHONE_AFTER_CUE.finditer(text):
        start, end = match.span()
        digits = sum(char.isdigit() for char in match.group())
        if not MIN_CUED_PHONE_DIGITS <= digits <= 15 or _DATE_START.match(match.group()):
            continue
        if re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", match.group()):
            continue  # "call 198.51.100.142" names an IP address
        if PHONE_CUE.search(_before(text, start)) or PHONE_LABEL_AFTER.match(text[end:]):
            spans.append((start, end, "PHONE"))
    return spans


def find_id_numbers(text: str) -> list[Span]:
    """Driver's licence and passport numbers after their cue words."""
    spans: list[Span] = []
    for pattern, cue, entity in (
        (ID_NUMBER, DRIVER_LICENSE_CUE, "DRIVER_LICENSE"),
        (PASSPORT_NUMBER, PASSPORT_CUE, "PASSPORT"),
    ):
        for match in pattern.finditer(text):
            if cue.search(_before(text, match.start())):
                spans.append((match.start(), match.end(), entity))
    return spans
