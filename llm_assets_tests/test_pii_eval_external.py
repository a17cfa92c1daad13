from llm_assets.cleaning.pii_eval import LabelledText
from llm_assets.cleaning.pii_eval_external import (
    NEUTRAL,
    SCORED_ENTITIES,
    _templates,
    build_external_eval_set,
    raw_data_folder,
    score_external,
    template_split,
)


def test_dev_and_test_parts_share_no_template() -> None:
    templates = _templates(raw_data_folder())
    dev = {t for t in templates if template_split(t) == "dev"}
    test = {t for t in templates if template_split(t) == "test"}
    assert dev and test and not dev & test
    assert len(dev | test) == len(set(templates))


def test_external_set_is_seeded_and_labels_point_at_their_values() -> None:
    first = build_external_eval_set("dev", size=60, seed=3)
    assert first == build_external_eval_set("dev", size=60, seed=3)
    assert first != build_external_eval_set("test", size=60, seed=3)
    labels = {entity for example in first for _, _, entity in example.spans}
    assert labels <= {*SCORED_ENTITIES, NEUTRAL}
    for example in first:
        for start, end, _ in example.spans:
            assert example.text[start:end].strip() != ""


def test_labels_cover_the_value_not_the_spaces_around_it() -> None:
    # FakeNameGenerator's CSV has names with a trailing space; a redacted name is not a miss.
    examples = build_external_eval_set("dev", size=1500, seed=0)
    spans = [(e.text, start, end) for e in examples for start, end, _ in e.spans]
    assert all(text[start:end] == text[start:end].strip() for text, start, end in spans)


def test_score_external_counts_recall_precision_and_neutral_spans() -> None:
    example = LabelledText(
        "Ann Lee lives in Oslo, call 22 33 44 55",
        ((0, 7, "PERSON"), (17, 21, NEUTRAL), (28, 39, "PHONE")),
        "external",
    )
    predicted = [[(0, 7, "PERSON"), (17, 21, "ADDRESS"), (8, 13, "PERSON")]]
    score = score_external([example], predicted)
    assert score.recall("PERSON") == 1.0 and score.recall("PHONE") == 0.0
    assert score.precision("PERSON") == 0.5  # "lives" is wrong; the town counts neither way
    assert score.precision("ADDRESS") != score.precision("ADDRESS")  # nan: only a neutral hit
    assert score.words_total == 3 and score.words_kept == 2  # "in", "call" kept; "lives" not
