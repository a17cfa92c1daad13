import pytest

from llm_assets.cleaning.pii import (
    PII_ENTITIES,
    find_pii,
    iban_is_valid,
    luhn_is_valid,
    redact_pii,
    redact_pii_batch,
)

ALL = list(PII_ENTITIES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Write to jane.doe+sync@example.co.uk today", "Write to <EMAIL> today"),
        ("Call me on +1 415 555 0134 please", "Call me on <PHONE> please"),
        ("Call (415) 555-0134.", "Call <PHONE>."),
        ("Phone: +44(0)115 4960914", "Phone: <PHONE>"),
        ("ring 619-625-4122x482 after lunch", "ring <PHONE> after lunch"),
        ("card 4111 1111 1111 1111 was charged", "card <CREDIT_CARD> was charged"),
        ("Amex 3782 822463 10005 expired", "Amex <CREDIT_CARD> expired"),
        ("IBAN DE89 3704 0044 0532 0130 00 ok", "IBAN <IBAN> ok"),
        ("refund to GB82WEST12345698765432 please", "refund to <IBAN> please"),
        ("ssn 123-45-6789.", "ssn <SSN>."),
        ("from 192.168.10.24 only", "from <IP_ADDRESS> only"),
        ("from 2001:db8::8a2e:370:7334 only", "from <IP_ADDRESS> only"),
        ("Thanks,\nJane Doe", "Thanks,\n<PERSON>"),
        ("My colleague Mark Ruiz saw it too.", "My colleague <PERSON> saw it too."),
        ("Dear Dr Wilson,\nyour ticket is closed.", "Dear <PERSON>,\nyour ticket is closed."),
        ("Ship it to 221B Baker Street, London, NW1 6XE.", "Ship it to <ADDRESS>."),
        ("Office: 3608 Kathryn Park Apt. 5, West Jerry, IN 60742", "Office: <ADDRESS>"),
        ("Lieferadresse: Rose-Krebs-Straße 7, 63608 Zschopau", "Lieferadresse: <ADDRESS>"),
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
        "Invoice INV-2026-702092 totals $1,417.78 including VAT.",
        "Use ports 3000-8080 instead; build 20231105.3 is broken.",
        "Set Max Retries to 5 and click Grant Access in the Admin Console.",
        "May 2026 release notes: Visual Studio Code 1.9 adds Single Sign-On.",
        "Product Manager and Head of Sales approved the roadmap for Q3 2026.",
    ],
)
def test_redact_pii_leaves_lookalikes_alone(text: str) -> None:
    assert redact_pii(text, ALL) == (text, {})


def test_redact_pii_only_redacts_requested_entities() -> None:
    redacted, counts = redact_pii("mail a@b.io from 10.0.0.1", ["EMAIL"])
    assert redacted == "mail <EMAIL> from 10.0.0.1"
    assert counts == {"EMAIL": 1}


def test_redact_pii_rejects_unknown_entities_with_the_allowed_list() -> None:
    with pytest.raises(ValueError, match="cleaning.pii_entities takes"):
        redact_pii("hello", ["EMAILS"])


def test_find_pii_returns_sorted_non_overlapping_spans() -> None:
    text = "Jane Doe (jane@example.com) called from +49 30 1234 5678."
    spans = find_pii(text, ALL)
    assert [entity for _, _, entity in spans] == ["PERSON", "EMAIL", "PHONE"]
    assert all(
        end <= next_start for (_, end, _), (next_start, _, _) in zip(spans, spans[1:], strict=False)
    )


def test_redact_pii_batch_matches_single_redaction() -> None:
    texts = ["mail a@b.io", "nothing here", "call +1 415 555 0134"]
    assert redact_pii_batch(texts, ALL) == [redact_pii(text, ALL) for text in texts]


def test_an_empty_batch_does_not_load_the_analyzer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quarter without feedback redacts nothing: loading spaCy and Presidio for it cost each
    such preferences run 5 s."""
    import llm_assets.cleaning.pii as pii

    def not_needed() -> None:
        raise AssertionError("the analyzer was built for no text")

    monkeypatch.setattr(pii, "pii_analyzer", not_needed)
    assert redact_pii_batch([], ALL) == []
    assert pii.ner_batch([], ALL) == []
    with pytest.raises(ValueError, match="cleaning.pii_entities takes"):
        redact_pii_batch([], ["NOT_AN_ENTITY"])


def test_pseudonyms_are_consistent_within_a_batch() -> None:
    texts = [
        "Mark Ruiz wrote from mark@example.com.",
        "Please call Mark Ruiz back; cc anna@example.com and MARK@example.com.",
    ]
    (first, counts), (second, _) = redact_pii_batch(texts, ALL, pseudonymize=True, key=b"k")
    assert first == "<PERSON_1> wrote from <EMAIL_1>."
    assert second == "Please call <PERSON_1> back; cc <EMAIL_2> and <EMAIL_1>."
    assert counts == {"PERSON": 1, "EMAIL": 1}


def test_pseudonyms_differ_across_keys_only_in_numbering_not_in_leaks() -> None:
    text = "card 4111 1111 1111 1111 and 4111-1111-1111-1111"
    [(redacted, _)] = redact_pii_batch([text], ALL, pseudonymize=True)
    assert redacted == "card <CREDIT_CARD_1> and <CREDIT_CARD_1>"


def test_checksums() -> None:
    assert luhn_is_valid("4111111111111111")
    assert not luhn_is_valid("4111111111111112")
    assert iban_is_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_is_valid("GB82 WEST 1234 5698 7654 33")


@pytest.mark.parametrize(
    "address", ["jane@inbox.example", "ops@build.corp.local", "a.b@team.internal"]
)
def test_emails_on_internal_and_reserved_domains_are_redacted(address: str) -> None:
    assert redact_pii(f"write to {address} today", ["EMAIL"])[0] == "write to <EMAIL> today"


def test_allow_list_keeps_product_names_that_look_like_people() -> None:
    text = "Hello Aurora Sync support,\nThe sync stopped.\nThanks,\nJane Doe"
    assert redact_pii(text, ["PERSON"])[0].startswith("Hello <PERSON> support")
    redacted, _ = redact_pii(text, ["PERSON"], allow=["aurora sync"])
    assert redacted.startswith("Hello Aurora Sync support")
    assert redacted.endswith("Thanks,\n<PERSON>")
