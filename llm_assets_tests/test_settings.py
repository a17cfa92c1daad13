import ast
import subprocess
import sys
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
        # One place per setting: an override of what a field sets names the field.
        (
            "training:\n  sft_overrides: {warmup_steps: 10}\n",
            "sft_overrides.warmup_steps is set by training.warmup_ratio; set that instead",
        ),
        (
            "training:\n  peft_overrides: {task_type: SEQ_CLS}\n",
            r"peft_overrides.task_type is set by the pipeline \(a causal language model",
        ),
        (
            "training:\n  method: full\n  peft_overrides: {use_dora: true}\n",
            "method full trains every weight, with no peft config",
        ),
        (
            "training:\n  gradient_checkpointing: true\n"
            "  sft_overrides: {gradient_checkpointing_kwargs: {every_n_layers: 2}}\n",
            "every_n_layers is set by training.gradient_checkpointing_every_n_layers",
        ),
        (
            "training:\n  gradient_checkpointing_every_n_layers: 2\n",
            "recomputes layers only with training.gradient_checkpointing: true",
        ),
        (
            # Even a budget of 1 (nothing kept) means nothing without checkpointing.
            "training:\n  gradient_checkpointing_kept_token_layers: 1\n",
            "kept_token_layers recomputes layers only with training.gradient_checkpointing",
        ),
    ],
    ids=[
        "scope-guard-without-retrieval",
        "disallowed-license",
        "override-of-a-field",
        "override-of-the-pipeline",
        "peft-override-without-peft",
        "every-n-layers-as-an-override",
        "every-n-layers-without-checkpointing",
        "budget-without-checkpointing",
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(
    tmp_path: Path, extra: str, reason: str
) -> None:
    path = tmp_path / "refused.yaml"
    path.write_text("sources:\n  - {name: t, kind: jsonl, path: t.jsonl}\n" + extra)
    with pytest.raises(ProfileError, match=reason):
        load_profile(path)


def test_loading_a_profile_imports_no_stage_library() -> None:
    """Every `dagster dev` reload loads the profile: it must not pay for torch, trl or pandas."""
    probe = (
        "import sys; from llm_assets.settings import load_profile; "
        f"load_profile({str(TINY_PROFILE)!r}); "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert not {"torch", "transformers", "trl", "peft", "pandas", "dagster"} & set(loaded)


def test_stage_configs_import_only_the_shared_base() -> None:
    """`llm_assets.settings` imports every stage's config.py: one importing its stage's code
    (which imports settings) would be an import cycle."""
    for path in sorted((PROJECT_ROOT / "llm_assets").glob("*/config.py")):
        imported = {
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        own = {name for name in imported if name and name.startswith("llm_assets")}
        assert own == {"llm_assets.config_base"}, f"{path} imports {own}"


def test_named_files_are_absolute_and_only_those_set(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    profile_path = tmp_path / "conf" / "profile.yaml"
    profile_path.write_text(
        "sources: [{name: docs, kind: documents, path: docs/*.md}]\n"
        "datasets: {golden_file: ../golden.jsonl}\n"
        "evaluation: {facts_file: /data/facts.jsonl, dev_facts_file: dev.jsonl}\n"
    )

    named = load_profile(profile_path).named_files()

    assert named == {
        ("datasets", "golden_file"): tmp_path / "conf" / ".." / "golden.jsonl",
        ("evaluation", "facts_file"): Path("/data/facts.jsonl"),
        ("evaluation", "dev_facts_file"): tmp_path / "conf" / "dev.jsonl",
    }
