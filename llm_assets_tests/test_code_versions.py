from pathlib import Path

import pytest

from llm_assets import code_versions
from llm_assets.code_versions import (
    AssetSettings,
    UndeclaredSettingRead,
    derived_code_version,
    stage_code_digest,
)
from llm_assets.defs import build_assets_and_checks
from llm_assets.settings import Profile, load_profile

ROOT = Path(__file__).resolve().parents[1]
TINY_PROFILE = ROOT / "conf" / "tiny.yaml"


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(TINY_PROFILE)


def test_declared_settings_read_as_they_are(profile: Profile) -> None:
    settings = AssetSettings(
        profile, "qlora_adapter", reads=["training", "datasets.max_length"], code=["training"]
    )
    assert settings.profile.training == profile.training
    assert settings.profile.datasets.max_length == profile.datasets.max_length
    assert settings.profile.base_dir == profile.base_dir


@pytest.mark.parametrize(
    "use",
    [
        lambda p: p.datasets.seed + 1,
        lambda p: bool(p.evaluation.engine),
        lambda p: p.datasets.system_prompt.strip(),
        lambda p: f"{p.datasets.seed}",
        lambda p: p.datasets.seed == 42,
        lambda p: [s for s in p.cleaning.pii_allow_list],
    ],
)
def test_an_undeclared_setting_fails_on_use_naming_asset_and_setting(profile: Profile, use) -> None:  # type: ignore[no-untyped-def]
    settings = AssetSettings(profile, "base_model", reads=["model"], code=["training"])
    with pytest.raises(
        UndeclaredSettingRead,
        match=r"'base_model' reads profile setting '(datasets|evaluation|cleaning)'",
    ):
        use(settings.profile)


def test_a_method_reading_an_undeclared_setting_fails(profile: Profile) -> None:
    settings = AssetSettings(profile, "golden_set", reads=["datasets.seed"], code=["datasets"])
    with pytest.raises(UndeclaredSettingRead, match="datasets.golden_file"):
        settings.profile.golden_path()


def test_sources_are_declared_one_by_one_and_field_by_field(profile: Profile) -> None:
    first, *others = profile.sources
    settings = AssetSettings(
        profile, "cleaning", reads=[f"sources.{first.name}.kind"], code=["cleaning"]
    )
    masked_first = settings.profile.sources[0]
    assert (masked_first.name, masked_first.kind) == (first.name, first.kind)
    with pytest.raises(UndeclaredSettingRead, match=f"sources.{first.name}.path"):
        str(masked_first.path)
    if others:
        with pytest.raises(UndeclaredSettingRead, match=f"sources.{others[0].name}"):
            _ = settings.profile.sources[1].kind


def test_code_version_follows_declared_settings_only(profile: Profile) -> None:
    reads = ["training.lora_r", "datasets.max_length"]
    before = derived_code_version(profile, reads, ["training"])
    new_rank = profile.training.model_copy(update={"lora_r": profile.training.lora_r + 1})
    new_seed = profile.datasets.model_copy(update={"seed": profile.datasets.seed + 1})
    assert (
        derived_code_version(profile.model_copy(update={"training": new_rank}), reads, ["training"])
        != before
    )
    assert (
        derived_code_version(profile.model_copy(update={"datasets": new_seed}), reads, ["training"])
        == before
    )
    assert derived_code_version(profile, reads, ["training"]) == before


def test_runtime_settings_are_readable_but_not_versioned(profile: Profile) -> None:
    def version(num_processes: int) -> str:
        training = profile.training.model_copy(update={"num_processes": num_processes})
        settings = AssetSettings(
            profile.model_copy(update={"training": training}),
            "qlora_adapter",
            reads=["training"],
            runtime=["training.num_processes"],
            code=["training"],
        )
        assert settings.profile.training.num_processes == num_processes
        return settings.code_version

    assert version(1) == version(2)


def test_stage_code_digest_follows_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = tmp_path / "training"
    stage.mkdir()
    (stage / "loop.py").write_text("STEPS = 1\n")
    monkeypatch.setattr(code_versions, "PACKAGE_ROOT", tmp_path)
    stage_code_digest.cache_clear()
    try:
        before = stage_code_digest("training")
        (stage / "loop.py").write_text("STEPS = 2\n")
        stage_code_digest.cache_clear()
        assert stage_code_digest("training") != before
        with pytest.raises(ValueError, match="no Python source"):
            stage_code_digest("nowhere")
    finally:
        stage_code_digest.cache_clear()


def _closure_objects(function: object, seen: set[int] | None = None) -> list[object]:
    """Everything a function can reach through its closure, nested functions included."""
    seen = seen if seen is not None else set()
    found: list[object] = []
    for cell in getattr(function, "__closure__", None) or ():
        value = cell.cell_contents
        if id(value) in seen:
            continue
        seen.add(id(value))
        found.append(value)
        if callable(value) and hasattr(value, "__closure__"):
            found += _closure_objects(value, seen)
    return found


@pytest.mark.parametrize("profile_file", ["tiny.yaml", "smollm2.yaml"])
def test_no_asset_body_holds_the_whole_profile(profile_file: str) -> None:
    """An asset body sees only its masked profile: holding the real one (or one of its
    sections) would let it read a setting its code version does not follow."""
    profile = load_profile(ROOT / "conf" / profile_file)
    sections = [profile, *(getattr(profile, name) for name in type(profile).model_fields)]
    assets, _ = build_assets_and_checks(profile)
    for asset in assets:
        body = asset.op.compute_fn.decorated_fn
        held = [
            name
            for value in _closure_objects(body)
            for name, section in zip(
                ["profile", *type(profile).model_fields], sections, strict=True
            )
            if value is section
        ]
        assert held == [], f"{asset.node_def.name} holds profile.{held} unmasked"
