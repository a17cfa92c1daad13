import pytest

from llm_assets.cleaning.pii import PII_ENTITIES, redact_pii
from llm_assets.cleaning.pii_structured import (
    find_addresses,
    find_cued_phone_numbers,
    find_id_numbers,
)


def _found(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[str, str]]:
    return [(text[start:end], entity) for start, end, entity in spans]


@pytest.mark.parametrize(
    ("text", "street"),
    [
        ("Ship it to Via Nazario Sauro 112, 20095 Cusano Milanino", "Via Nazario Sauro 112"),
        ("Neue Adresse: Rhinstrasse 91, 80975 München", "Rhinstrasse 91"),
        ("We moved to Glynitveien 218, 1400 SKI last year", "Glynitveien 218"),
        ("Please send it to 96 rue de Penthièvre, 95000 PONTOISE", "96 rue de Penthièvre"),
        ("Deliver to ul. Długa 5, 00-238 Warszawa", "ul. Długa 5"),
        ("Our office: Fő utca 5, 1011 Budapest", "Fő utca 5"),
        ("Sent to Rua Doutor Afrânio Junqueira 1460, 04581-040 São Paulo", None),
        ("The letter arrived at Norðurbraut 27, 112 Reykjavík", "Norðurbraut 27"),
        ("I once lived at 21 Norrbyvägen, Vehmaa", "21 Norrbyvägen"),
        ("Billing address: Karu põik 61, 80098 Pärnu", "Karu põik 61"),
    ],
)
def test_find_addresses_reads_streets_written_name_first_or_number_first(
    text: str, street: str | None
) -> None:
    found = _found(text, find_addresses(text))
    addresses = [value for value, entity in found if entity == "ADDRESS"]
    assert addresses, found
    if street is not None:
        assert street in addresses[0]


def test_find_addresses_takes_a_bare_street_only_with_evidence() -> None:
    cued = "My new address is Männi 12, please update it."
    assert ("Männi 12", "ADDRESS") in _found(cued, find_addresses(cued))
    with_postcode = "Männi 12, 45429 Mustoja"
    assert ("Männi 12", "ADDRESS") in _found(with_postcode, find_addresses(with_postcode))
    for product in ("Upgrade Chrome 120 before Friday.", "Windows 11 and Office 2021 are fine."):
        assert find_addresses(product) == []


def test_find_addresses_labels_postal_codes_next_to_an_address_or_a_cue() -> None:
    block = "Charles Bourgouin\n\n876 Spojovací\n Suite 390\n Trebelovice\n Czech Republic 675 32"
    found = _found(block, find_addresses(block))
    assert ("876 Spojovací", "ADDRESS") in found
    assert ("Suite 390", "ADDRESS") in found
    assert ("675 32", "POSTAL_CODE") in found
    assert _found("ZIP: 94110", find_addresses("ZIP: 94110")) == [("94110", "POSTAL_CODE")]
    uk = "10 Downing Street, London, SW1A 2AA"
    assert "SW1A 2AA" in " ".join(uk[start:end] for start, end, _ in find_addresses(uk))
    # Years and counts are not postal codes without an address or a cue beside them.
    assert find_addresses("Released in 2019 with 4500 users.") == []


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Phone: 84 23 30", "84 23 30"),
        ("Call me at 60-56-85-91 tomorrow", "60-56-85-91"),
        ("Tel. +299 84 23 30", "+299 84 23 30"),
        ("73 196 188-Fax", "73 196 188"),
        ("my registered 450 0840. Could you look?", "450 0840"),
    ],
)
def test_find_cued_phone_numbers_takes_short_national_numbers_after_a_cue(
    text: str, number: str
) -> None:
    assert (number, "PHONE") in _found(text, find_cued_phone_numbers(text))


def test_find_cued_phone_numbers_ignores_numbers_without_a_cue() -> None:
    assert find_cued_phone_numbers("Order 84 23 30 shipped in 3 boxes") == []
    assert find_cued_phone_numbers("Phone: 12") == []
    assert find_cued_phone_numbers("Call 198.51.100.142 from the office") == []
    assert find_cued_phone_numbers("Phone: 1999-01-08 04:05") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "My driver's license number is S530-460-99-424-0",
            ("S530-460-99-424-0", "DRIVER_LICENSE"),
        ),
        ("Driving licence: MORGA753116SM9IJ", ("MORGA753116SM9IJ", "DRIVER_LICENSE")),
        ("Führerscheinnummer B072RRE2I55", ("B072RRE2I55", "DRIVER_LICENSE")),
        ("Passport number: X1234567", ("X1234567", "PASSPORT")),
        ("Reisepass C01X00T47 läuft ab", ("C01X00T47", "PASSPORT")),
    ],
)
def test_find_id_numbers_needs_its_cue(text: str, expected: tuple[str, str]) -> None:
    assert _found(text, find_id_numbers(text)) == [expected]


def test_find_id_numbers_leaves_order_and_ticket_numbers_alone() -> None:
    assert find_id_numbers("Order X1234567 and ticket S530-460-99 are closed.") == []


def test_redact_pii_redacts_the_issue_examples() -> None:
    billing = "Billing address: Ann Lee\n 28245 Puruntie 82 Apt. 595\n LAPPEENRANTA"
    redacted, counts = redact_pii(billing, PII_ENTITIES)
    assert "Puruntie" not in redacted and "595" not in redacted and "Ann Lee" not in redacted
    assert counts["ADDRESS"] >= 1
    assert redact_pii("Call 60-56-85-91", PII_ENTITIES)[0] == "Call <PHONE>"
