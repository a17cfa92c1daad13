from pathlib import Path

import pytest

from llm_assets.settings import ProfileError, load_profile

from .conftest import PROJECT_ROOT, TINY_PROFILE


@pytest.mark.parametrize(
    "profile_path", sorted((PROJECT_ROOT / "conf").glob("*.yaml")) + [TINY_PROFILE], ids=str
)
def test_every_shipped_profile_validates(profile_path: Path) -> None:
    profile = load_profile(profile_path)
    assert profile.sources
    for source in profile.sources:
        assert Path(profile.source_glob(source)).is_absolute()


def test_profile_with_only_sources_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("sources:\n  - {name: notes, kind: documents, path: notes/*.md}\n")
    profile = load_profile(path)
    assert profile.training.method == "qlora"
    assert profile.source_glob(profile.sources[0]) == str(tmp_path / "notes/*.md")


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(
        "sources:\n  - {name: t, kind: jsonl, path: t.jsonl}\ntraining:\n  lora_rank: 8\n"
    )
    with pytest.raises(ProfileError) as error:
        load_profile(path)
    assert str(path) in str(error.value)
    assert "training.lora_rank: unknown key" in str(error.value)


def test_wrong_type_names_the_source_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("sources:\n  - {name: tickets, kind: xml, path: t.xml}\n")
    with pytest.raises(ProfileError) as error:
        load_profile(path)
    assert "sources.0(tickets).kind" in str(error.value)


def test_missing_sources_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("training: {method: lora}\n")
    with pytest.raises(ProfileError, match="sources: Field required"):
        load_profile(empty)
    broken = tmp_path / "broken.yaml"
    broken.write_text("sources: [\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(broken)
    with pytest.raises(ProfileError, match="profile not found"):
        load_profile(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        # A scope guard is calibrated on the training questions' retrieval scores.
        ("guardrails:\n  scope: {enabled: true}\n", "needs datasets.retrieval.enabled"),
        (
            "model: {kind: pretrained, id_or_path: some/model, license: cc-by-nc-4.0}\n",
            "cc-by-nc-4.0.*not in allowed_licenses",
        ),
    ],
    ids=["scope-guard-without-retrieval", "disallowed-license"],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(
    tmp_path: Path, extra: str, reason: str
) -> None:
    path = tmp_path / "refused.yaml"
    path.write_text("sources:\n  - {name: t, kind: jsonl, path: t.jsonl}\n" + extra)
    with pytest.raises(ProfileError, match=reason):
        load_profile(path)
