from pathlib import Path

import pytest

from llm_assets.cleaning.pii import PII_ENTITIES, find_pii, redact_pii, redact_pii_batch
from llm_assets.cleaning.pii_names import find_person_names
from llm_assets.cleaning.pii_ner import (
    MODEL_SHA256,
    ModelIntegrityError,
    model_files_sha256,
    verified_model_folder,
)


def test_model_files_sha256_covers_names_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "ner").mkdir()
    (tmp_path / "ner" / "model").write_bytes(b"weights")
    first = model_files_sha256(tmp_path)
    (tmp_path / "ner" / "model").write_bytes(b"weightz")
    assert model_files_sha256(tmp_path) != first
    (tmp_path / "ner" / "model").write_bytes(b"weights")
    (tmp_path / "ner" / "model").rename(tmp_path / "ner" / "model2")
    assert model_files_sha256(tmp_path) != first


def test_installed_model_matches_the_pinned_digest() -> None:
    assert model_files_sha256(verified_model_folder()) == MODEL_SHA256


def test_a_model_with_another_digest_is_a_clear_error() -> None:
    with pytest.raises(ModelIntegrityError, match="expected 0+.*MODEL_SHA256"):
        verified_model_folder.__wrapped__("0" * 64)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Nicole: Remember me, Mary?\nJohn: You saved my life!", ["Nicole", "Mary", "John"]),
        ("Why is Antti so impulsive?", ["Antti"]),
        ("The refund was approved by Fábio Barros yesterday.", ["Fábio Barros"]),
        ("Founders: Longo, Boyes and Kruger.", ["Longo", "Boyes", "Kruger"]),
        ("Her maiden name is Chichigov", ["Chichigov"]),
        ("It was a done thing between him and Isaac's kid.", ["Isaac"]),
        # Named by themself: the word after "call me" is a name even when it is also a word.
        ("My name is Oline Lyberth but everyone calls me Victor", ["Oline Lyberth", "Victor"]),
        ("Sometimes people call me Villads", ["Villads"]),  # not a plural of "villa"
        ("What's your last name? Tenno", ["Tenno"]),
    ],
)
def test_person_names_found_by_model_and_rules(text: str, names: list[str]) -> None:
    redacted, _ = redact_pii(text, ["PERSON"])
    for name in names:
        assert name not in redacted, redacted


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # Letters beyond Latin-1 (Czech, Polish, Esperanto), not only "é" and "ö".
        ("Ticket opened by Hynek Dvořák from Brno.", ["Hynek Dvořák"]),
        ("Kateřina: What a wife.\nRené: Remember me?", ["Kateřina", "René"]),
        ("Please add my daughter Zdeňka to the family plan.", ["Zdeňka"]),  # a relative
        ("It is Oyelaran's daughter on the phone.", ["Oyelaran's"]),
        ("Oluwaseun K. Adebayo approved the change.", ["Oluwaseun K. Adebayo"]),  # an initial
        ("Her birth name is Kowalczyk", ["Kowalczyk"]),
    ],
)
def test_name_rules_without_the_model(text: str, names: list[str]) -> None:
    """What the rules find on their own, where the NER model may or may not."""
    assert [text[start:end] for start, end in find_person_names(text)] == names


@pytest.mark.parametrize(
    "text",
    [
        "Will the Pro plan include Single Sign-On after May 2026?",
        "May I ask whether the export will finish today?",
        "Will this work on Windows Server 2022? We will see in May.",
        "Grant Access under Settings, then Mark as read.",
        "Don't restart the Data Platform before Monday.",
        "The file called Settings lists the Uses and Boxes of each Project.",
        "See Section A. Overview, then Plan B. Upgrade the client to Version 4.",
        "My son's laptop and my Mother's Day card are both on the Team plan.",
    ],
)
def test_names_that_are_common_words_are_kept_in_non_name_use(text: str) -> None:
    assert redact_pii(text, PII_ENTITIES)[0] == text


def test_allow_list_covers_names_inside_an_allowed_product() -> None:
    text = "Aurora Sync stopped syncing for Jane Doe."
    redacted, _ = redact_pii(text, ["PERSON"], allow=["Aurora Sync", "Aurora"])
    assert redacted == "Aurora Sync stopped syncing for <PERSON>."


def test_batched_ner_gives_the_same_spans_as_one_text_at_a_time() -> None:
    texts = ["Ask Keira Olsen about it.", "no capitals here", "Phone: 84 23 30", "Hi Tom,"]
    batched = redact_pii_batch(texts, PII_ENTITIES)
    assert [text for text, _ in batched] == [redact_pii(t, PII_ENTITIES)[0] for t in texts]
    assert find_pii("no capitals here", PII_ENTITIES) == []


def test_allow_list_trims_names_that_run_over_an_allowed_product() -> None:
    allow = ["Aurora", "Aurora Sync"]
    for text in ("Run Aurora Sync on a computer.", "# Using the Aurora Sync Mobile App on iOS"):
        assert redact_pii(text, ["PERSON"], allow=allow)[0] == text


def test_names_in_json_provenance_fields_are_redacted() -> None:
    fields = '{"customer_email": "g@d.example", "customer_name": "Grace Delacroix", "plan": "pro"}'
    redacted, _ = redact_pii(fields, PII_ENTITIES)
    assert "Grace" not in redacted and "Delacroix" not in redacted


def test_buttons_in_product_documentation_are_not_people() -> None:
    text = "Open Settings → Devices, select the laptop and click Unlink."
    assert redact_pii(text, PII_ENTITIES)[0] == text
