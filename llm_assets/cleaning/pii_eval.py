"""A labelled evaluation set for PII redaction, and its scorer.

Support-ticket sentences are generated with Faker (seeded; en_US, en_GB and de_DE) around known
spans of each entity type, plus sentences with no PII at all (product text full of dates,
versions, prices, error codes and capitalised product names) that must come through untouched.

An entity counts as caught when every character of its span is inside some redacted span (the
type given to it does not matter: a phone number redacted as `<SSN>` leaks nothing). Words kept
is the share of whitespace-separated words outside every labelled span that no redaction touched.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

Span = tuple[int, int, str]

EVAL_ENTITIES = (
    "EMAIL",
    "PHONE",
    "CREDIT_CARD",
    "IBAN",
    "SSN",
    "IP_ADDRESS",
    "PERSON",
    "ADDRESS",
)
EVAL_LOCALES = ("en_US", "en_GB", "de_DE")


@dataclass(frozen=True)
class LabelledText:
    text: str
    spans: tuple[Span, ...]
    locale: str


# One labelled slot per template, named by its entity; {product}, {date}, ... are filler.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "EMAIL": (
        "Please send the invoice to {EMAIL} instead of the old address.",
        "Customer wrote from {EMAIL} about ticket #{ticket}.",
        "Reset link never arrived at {EMAIL}, tried twice on {date}.",
        "Contact: {EMAIL}",
        "cc {EMAIL}; the {product} licence renews on {date}.",
        "Can you change my login email to {EMAIL}? Thanks.",
        "The export for account {EMAIL} failed with error {error}.",
    ),
    "PHONE": (
        "Call me back on {PHONE} after 3pm.",
        "My number is {PHONE}, the old one is disconnected.",
        "Phone: {PHONE}",
        "Reached the customer at {PHONE} regarding {product} {version}.",
        "Please update the contact number to {PHONE}.",
        "SMS codes go to {PHONE} but never arrive since {date}.",
        "Mobile {PHONE} - available weekdays only.",
    ),
    "CREDIT_CARD": (
        "I was charged twice on card {CREDIT_CARD} for order #{ticket}.",
        "Card number {CREDIT_CARD}, expiry 09/28.",
        "Please refund {price} to {CREDIT_CARD}.",
        "The payment with {CREDIT_CARD} was declined with error {error}.",
        "Replace {CREDIT_CARD} with my new card for the {product} subscription.",
    ),
    "IBAN": (
        "Please refund to IBAN {IBAN}.",
        "Our bank details changed: {IBAN} from {date}.",
        "Direct debit from {IBAN} failed on {date}.",
        "Account {IBAN} should receive the {price} credit.",
        "Bankverbindung: {IBAN}",
    ),
    "SSN": (
        "My SSN is {SSN} for the tax form.",
        "The W-9 lists {SSN} as the taxpayer number.",
        "Employee social security number: {SSN}",
        "Verify identity with SSN {SSN} before resetting the account.",
        "Payroll rejected {SSN} on {date}.",
    ),
    "IP_ADDRESS": (
        "Login attempts from {IP_ADDRESS} were blocked.",
        "Whitelist {IP_ADDRESS} for the {product} gateway.",
        "The server at {IP_ADDRESS} returns error {error} since {version}.",
        "Client IP: {IP_ADDRESS}",
        "Traffic from {IP_ADDRESS} spiked on {date}.",
    ),
    "PERSON": (
        "Thanks,\n{PERSON}",
        "Best regards,\n{PERSON}\nSupport Team",
        "My colleague {PERSON} reported the same crash in {product} {version}.",
        "{PERSON} from accounting cannot open the invoice.",
        "Please assign this ticket to {PERSON}.",
        "The refund was approved by {PERSON} on {date}.",
        "Hi, this is {PERSON}. Our {product} export stopped working.",
        "I spoke with {PERSON} on the phone yesterday about error {error}.",
        "Forwarding on behalf of {PERSON}, who is out until {date}.",
        "Customer name: {PERSON}",
        "{PERSON} says the upgrade to {version} fixed it.",
        "Could {PERSON} please call me about order #{ticket}?",
        "Dear {PERSON},\nyour ticket #{ticket} has been resolved.",
        "Escalated to {PERSON} (Tier 2).",
        "Signed off by {PERSON}",
    ),
    "ADDRESS": (
        "Please ship the replacement to {ADDRESS}.",
        "Our new office address is {ADDRESS}.",
        "Billing address: {ADDRESS}",
        "The technician should go to {ADDRESS} on {date}.",
        "Return label for {ADDRESS} is missing.",
        "We moved from {ADDRESS} last month, please update the invoice.",
        "Lieferadresse: {ADDRESS}",
    ),
}

# Sentences with no PII: numbers that look like identifiers, and capitalised words that are not
# names. Everything here must be kept.
NO_PII_TEMPLATES: tuple[str, ...] = (
    "Released on {date} as version {version}.",
    "Error {error} after 30 minutes of {product} sync.",
    "The {product} plan costs {price} per month for {n} users.",
    "Upgrade {product} to {version} before {date}; {version} is end of life.",
    "Build {build} of {product} crashes with exit code {n}.",
    "Ticket #{ticket} was escalated to Tier 2 Support on {date}.",
    "Set Max Retries to {n} and Timeout to {n}000 ms in the Admin Console.",
    "May {year} release notes: {product} {version} adds Single Sign-On.",
    "Will the Pro plan include {product} after {date}?",
    "Click Save Changes, then Grant Access under Settings > Security.",
    "Order {sku} shipped on {date} for {price}.",
    "The API returns HTTP {http} with code {error} for requests over {n} MB.",
    "Port {port} is blocked; use ports {port}-{port} instead.",
    "Invoice INV-{year}-{ticket} totals {price} including VAT.",
    "Our Windows Server {year} hosts run {product} {version}.",
    "The Monday report from Data Platform shows {n} failed jobs since {date}.",
    "Patch KB{kb} fixes error {error} in {product}.",
    "Chrome {major}.0.{build3}.{n} and Firefox {major} are supported.",
    "Latency rose from {n} ms to {n}.{n} s at {time} UTC on {date}.",
    "Product Manager and Head of Sales approved the {product} roadmap for Q{q} {year}.",
)

PRODUCTS = (
    "Dagster Cloud",
    "Visual Studio Code",
    "Salesforce",
    "Jira",
    "Confluence",
    "Google Sheets",
    "Microsoft Teams",
    "Power BI",
    "Zendesk",
    "Acme Sync",
    "DataHub",
    "Snowflake",
    "GitHub Actions",
    "Slack",
    "Adobe Acrobat",
)


def _filler(name: str, rng: random.Random) -> str:
    year = rng.randint(2015, 2027)
    fillers: dict[str, Callable[[], str]] = {
        "date": lambda: rng.choice(
            [
                f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{year}",
                f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/{year}",
                f"March {rng.randint(1, 28)}, {year}",
            ]
        ),
        "version": lambda: rng.choice(
            [
                f"{rng.randint(0, 12)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}",
                f"v{rng.randint(1, 9)}.{rng.randint(0, 9)}",
                f"{rng.randint(1, 5)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"
                f"-rc{rng.randint(1, 4)}",
            ]
        ),
        "error": lambda: rng.choice(
            [
                f"0x{rng.randint(0, 2**32 - 1):08X}",
                f"E{rng.randint(1000, 9999)}",
                f"ERR-{rng.randint(100, 999)}-{rng.randint(10, 99)}",
                str(rng.randint(400, 599)),
            ]
        ),
        "price": lambda: rng.choice(
            [
                f"${rng.randint(1, 999)}.{rng.randint(0, 99):02d}",
                f"{rng.randint(1, 999)},{rng.randint(0, 99):02d} EUR",
                f"£{rng.randint(1, 9999):,}",
                f"USD {rng.randint(1000, 99999):,}.00",
            ]
        ),
        "product": lambda: rng.choice(PRODUCTS),
        "ticket": lambda: str(rng.randint(10000, 999999)),
        "n": lambda: str(rng.randint(2, 500)),
        "year": lambda: str(year),
        "build": lambda: (
            f"{year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}.{rng.randint(1, 9)}"
        ),
        "build3": lambda: str(rng.randint(1000, 6999)),
        "major": lambda: str(rng.randint(90, 140)),
        "sku": lambda: f"SKU-{rng.randint(10000, 99999)}-{rng.choice(['XL', 'M', 'S'])}",
        "http": lambda: rng.choice(["400", "403", "404", "429", "500", "503"]),
        "port": lambda: str(rng.choice([22, 80, 443, 5432, 8080, 8443, 9090, 3000])),
        "kb": lambda: str(rng.randint(4000000, 5999999)),
        "time": lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
        "q": lambda: str(rng.randint(1, 4)),
    }
    return fillers[name]()


def _card(fake, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    card_type = rng.choice(["visa16", "mastercard", "amex", "discover", "jcb16", "diners"])
    digits = fake.credit_card_number(card_type=card_type)
    style = rng.random()
    if style < 0.3:
        return str(digits)
    separator = " " if style < 0.75 else "-"
    if len(digits) == 15:  # Amex prints 4-6-5
        groups = [digits[:4], digits[4:10], digits[10:]]
    elif len(digits) == 14:  # Diners prints 4-6-4
        groups = [digits[:4], digits[4:10], digits[10:]]
    else:
        groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    return separator.join(groups)


def _iban(fake, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    iban = str(fake.iban())
    if rng.random() < 0.5:
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def _ip(fake, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    roll = rng.random()
    if roll < 0.55:
        return str(fake.ipv4_public())
    if roll < 0.8:
        return str(fake.ipv4_private())
    address = str(fake.ipv6())
    if rng.random() < 0.3:  # the compressed form people actually paste
        import ipaddress

        return ipaddress.IPv6Address(address).compressed
    return address


def _person(fake, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    roll = rng.random()
    if roll < 0.75:
        return f"{fake.first_name()} {fake.last_name()}"
    if roll < 0.85:
        return f"{fake.first_name()} {fake.first_name()[0]}. {fake.last_name()}"
    if roll < 0.93:
        return f"{fake.first_name()} {fake.first_name()} {fake.last_name()}"
    return f"{fake.prefix()} {fake.last_name()}".replace("  ", " ").strip()


_MILITARY = re.compile(r"\b(?:PSC|USNS|USNV|USS|USCGC|Unit \d+ Box)\b")


def _address(fake, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    # US military mail (PSC ..., APO AE ...) has no street: left out, as Faker mixes it in.
    while True:
        value = str(fake.street_address() if rng.random() < 0.5 else fake.address())
        if not _MILITARY.search(value):
            return re.sub(r"\s*\n\s*", ", ", value)


def _value(entity: str, locale: str, fakers, rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    fake = fakers[locale]
    if entity == "EMAIL":
        return str(fake.email() if rng.random() < 0.7 else fake.company_email())
    if entity == "PHONE":
        return str(fake.phone_number())
    if entity == "CREDIT_CARD":
        return _card(fake, rng)
    if entity == "IBAN":
        return _iban(fake, rng)
    if entity == "SSN":
        return str(fakers["en_US"].ssn())  # a US identifier, whatever the locale
    if entity == "IP_ADDRESS":
        return _ip(fake, rng)
    if entity == "PERSON":
        return _person(fake, rng)
    if entity == "ADDRESS":
        return _address(fake, rng)
    raise ValueError(f"unknown entity {entity!r}; expected one of {EVAL_ENTITIES}")


_SLOT = re.compile(r"\{(\w+)\}")


def _fill(template: str, locale: str, fakers, rng: random.Random) -> LabelledText:  # type: ignore[no-untyped-def]
    pieces: list[str] = []
    spans: list[Span] = []
    cursor = 0
    length = 0
    for match in _SLOT.finditer(template):
        literal = template[cursor : match.start()]
        pieces.append(literal)
        length += len(literal)
        name = match.group(1)
        if name in EVAL_ENTITIES:
            value = _value(name, locale, fakers, rng)
            spans.append((length, length + len(value), name))
        else:
            value = _filler(name, rng)
        pieces.append(value)
        length += len(value)
        cursor = match.end()
    pieces.append(template[cursor:])
    return LabelledText("".join(pieces), tuple(spans), locale)


def build_eval_set(
    per_entity: int = 300,
    no_pii: int = 300,
    seed: int = 0,
    locales: Sequence[str] = EVAL_LOCALES,
) -> list[LabelledText]:
    """`per_entity` labelled texts for each entity type and `no_pii` texts without any, shuffled.

    Deterministic for a given seed: the same call builds the same set on every machine.
    """
    from faker import Faker

    rng = random.Random(seed)
    fakers = {}
    for index, locale in enumerate(sorted(set(locales) | {"en_US"})):
        fake = Faker(locale)
        fake.seed_instance(seed * 1000 + index)
        fakers[locale] = fake
    examples: list[LabelledText] = []
    for entity in EVAL_ENTITIES:
        for _ in range(per_entity):
            template = rng.choice(TEMPLATES[entity])
            examples.append(_fill(template, rng.choice(list(locales)), fakers, rng))
    for _ in range(no_pii):
        examples.append(_fill(rng.choice(NO_PII_TEMPLATES), rng.choice(list(locales)), fakers, rng))
    rng.shuffle(examples)
    return examples


@dataclass
class PiiScore:
    """Per-entity recall, the share of other words kept, and a few misses to read."""

    caught: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    words_kept: int = 0
    words_total: int = 0
    missed: list[tuple[str, str]] = field(default_factory=list)
    over_redacted: list[str] = field(default_factory=list)

    def recall(self, entity: str) -> float:
        return self.caught[entity] / self.total[entity] if self.total[entity] else float("nan")

    @property
    def kept_share(self) -> float:
        return self.words_kept / self.words_total if self.words_total else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {
            "recall": {entity: round(self.recall(entity), 4) for entity in sorted(self.total)},
            "support": dict(sorted(self.total.items())),
            "words_kept": round(self.kept_share, 4),
            "words_total": self.words_total,
        }


_WORD = re.compile(r"\S+")


def _covered(start: int, end: int, predicted: Iterable[Span]) -> bool:
    covered = [False] * (end - start)
    for p_start, p_end, _ in predicted:
        for position in range(max(start, p_start), min(end, p_end)):
            covered[position - start] = True
    return all(covered)


def score_spans(
    examples: Sequence[LabelledText],
    predicted: Sequence[Sequence[Span]],
    keep_examples: int = 20,
) -> PiiScore:
    """Score predicted spans (one list per example, in the same order) against the labels."""
    score = PiiScore()
    for example, spans in zip(examples, predicted, strict=True):
        for start, end, entity in example.spans:
            score.total[entity] += 1
            if _covered(start, end, spans):
                score.caught[entity] += 1
            elif len(score.missed) < keep_examples * len(EVAL_ENTITIES):
                score.missed.append((entity, example.text[start:end]))
        for word in _WORD.finditer(example.text):
            w_start, w_end = word.span()
            if any(w_start < end and start < w_end for start, end, _ in example.spans):
                continue
            score.words_total += 1
            if any(w_start < end and start < w_end for start, end, _ in spans):
                if len(score.over_redacted) < keep_examples:
                    score.over_redacted.append(f"{word.group()!r} in {example.text!r}")
            else:
                score.words_kept += 1
    return score
