import pytest

from llm_assets.cleaning.pii import iban_is_valid, luhn_is_valid, redact_pii

ALL = ["EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "SSN", "IP_ADDRESS"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Write to jane.doe+sync@example.co.uk today", "Write to <EMAIL> today"),
        ("Call me on +1 415 555 0134 please", "Call me on <PHONE> please"),
        ("Call (415) 555-0134.", "Call <PHONE>."),
        ("card 4111 1111 1111 1111 was charged", "card <CREDIT_CARD> was charged"),
        ("Amex 3782 822463 10005 expired", "Amex <CREDIT_CARD> expired"),
        ("IBAN DE89 3704 0044 0532 0130 00 ok", "IBAN <IBAN> ok"),
        ("ssn 123-45-6789.", "ssn <SSN>."),
        ("from 192.168.10.24 only", "from <IP_ADDRESS> only"),
    ],
)
def test_redact_pii_replaces_each_identifier_with_its_type(text: str, expected: str) -> None:
    redacted, counts = redact_pii(text, ALL)
    assert redacted == expected
    assert sum(counts.values()) == 1


@pytest.mark.parametrize(
    "text",
    [
        "Released on 2026-03-14 as version 4.2.1",
        "Error 0x80070005 after 30 minutes",
        "order 4111 1111 1111 1112 is not a card (bad checksum)",
        "IP 999.1.1.1 is not an address",
        "The plan costs 12.99 per month for 3 users",
    ],
)
def test_redact_pii_leaves_lookalikes_alone(text: str) -> None:
    assert redact_pii(text, ALL) == (text, {})


def test_redact_pii_only_redacts_requested_entities() -> None:
    redacted, counts = redact_pii("mail a@b.io from 10.0.0.1", ["EMAIL"])
    assert redacted == "mail <EMAIL> from 10.0.0.1"
    assert counts == {"EMAIL": 1}


def test_checksums() -> None:
    assert luhn_is_valid("4111111111111111")
    assert not luhn_is_valid("4111111111111112")
    assert iban_is_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_is_valid("GB82 WEST 1234 5698 7654 33")
