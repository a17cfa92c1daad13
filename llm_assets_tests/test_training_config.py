"""The profile's training section against the library classes it is mapped onto: every argument
the mapping sets is a field of trl's SFTConfig or of the method's peft config, of a kind that
field takes, and the overrides reach the configs or are refused with the key to fix."""

import dataclasses
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest
import yaml

from llm_assets.settings import TrainingConfig, TrainingMethod
from llm_assets.training.sft import (
    PEFT_CONFIG_CLASSES,
    SFT_DEFAULTS,
    peft_arguments,
    peft_config_from,
    sft_arguments,
    sft_config_from,
)

pytestmark = pytest.mark.slow


def _library_default(argument: dataclasses.Field[Any]) -> Any:
    if argument.default is not dataclasses.MISSING:
        return argument.default
    if argument.default_factory is not dataclasses.MISSING:
        return argument.default_factory()
    return None


def _same_kind(ours: Any, theirs: Any) -> bool:
    """Whether our value is the kind of value the library's default is (None: any kind)."""
    if ours is None or theirs is None:
        return True
    if isinstance(theirs, bool) or isinstance(ours, bool):
        return isinstance(ours, bool) and isinstance(theirs, bool)
    if isinstance(theirs, int | float):
        return isinstance(ours, int | float)
    if isinstance(theirs, Enum):
        return ours in {member.value for member in type(theirs)}
    return isinstance(ours, type(theirs))


def _assert_fields_of(config_class: type, arguments: dict[str, Any]) -> None:
    from pydantic import TypeAdapter

    fields = {argument.name: argument for argument in dataclasses.fields(config_class)}
    types = get_type_hints(config_class)
    for name, value in arguments.items():
        assert name in fields, f"{config_class.__name__} has no argument {name!r}"
        TypeAdapter(types[name]).validate_python(value, strict=True)
        default = _library_default(fields[name])
        assert _same_kind(value, default), f"{name}={value!r}, library default {default!r}"


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_every_sft_argument_mapped_is_a_field_of_sft_config(gpu: bool) -> None:
    from trl import SFTConfig

    mapped = sft_arguments(TrainingConfig(), Path("checkpoints"), 512, gpu)
    # The load-time table of what sets each argument covers exactly what the mapping sets.
    assert set(mapped) == set(TrainingConfig.SFT_ARGUMENTS_SET_BY)
    assert not set(mapped) & set(SFT_DEFAULTS)
    _assert_fields_of(SFTConfig, {**SFT_DEFAULTS, **mapped})


def test_every_peft_argument_mapped_is_a_field_of_the_methods_peft_config() -> None:
    import peft

    assert set(PEFT_CONFIG_CLASSES) == set(get_args(TrainingMethod)) - {"full"}
    mapped: set[str] = set()
    for method, class_name in PEFT_CONFIG_CLASSES.items():
        arguments = peft_arguments(TrainingConfig(method=method))  # type: ignore[arg-type]
        assert arguments is not None
        _assert_fields_of(getattr(peft, class_name), arguments)
        mapped |= set(arguments)
    assert mapped == set(TrainingConfig.PEFT_ARGUMENTS_SET_BY)
    assert peft_arguments(TrainingConfig(method="full")) is None


def test_overrides_reach_the_library_configs_as_their_fields_type_them(tmp_path: Path) -> None:
    # As a profile gives them: YAML reads 1e-2 (no dot) as a string.
    training = TrainingConfig.model_validate(
        yaml.safe_load(
            "sft_overrides: {weight_decay: 1e-2, eval_strategy: steps, eval_steps: 7}\n"
            "peft_overrides: {use_rslora: true, bias: lora_only}\n"
        )
    )
    sft = sft_config_from(training, tmp_path, 256)
    assert sft.weight_decay == 0.01 and sft.eval_steps == 7 and sft.eval_strategy == "steps"
    assert sft.save_total_limit == SFT_DEFAULTS["save_total_limit"]
    assert sft.learning_rate == training.learning_rate  # the fields still set what they map to
    lora = peft_config_from(training)
    assert lora.use_rslora and lora.bias == "lora_only" and lora.r == training.lora_r
    # What the code itself sets on top still wins (the benchmark turns evaluation off).
    assert sft_config_from(training, tmp_path, 256, {"eval_strategy": "no"}).eval_strategy == "no"


@pytest.mark.parametrize(
    ("training", "build", "message"),
    [
        (
            TrainingConfig(sft_overrides={"weight_decy": 0.1}),
            sft_config_from,
            r"training\.sft_overrides\.weight_decy is not an argument of trl's SFTConfig; "
            r"closest: weight_decay",
        ),
        (
            TrainingConfig(sft_overrides={"weight_decay": "heavy"}),
            sft_config_from,
            r"training\.sft_overrides\.weight_decay: 'heavy' does not fit trl's "
            r"SFTConfig\.weight_decay \(float\)",
        ),
        (
            TrainingConfig(method="prompt_tuning", peft_overrides={"use_rslora": True}),
            peft_config_from,
            r"training\.peft_overrides\.use_rslora is not an argument of peft's "
            r"PromptTuningConfig",
        ),
        (
            TrainingConfig(peft_overrides={"lora_dropuot": 0.1}),
            peft_config_from,
            r"training\.peft_overrides\.lora_dropuot is not an argument of peft's LoraConfig; "
            r"closest: lora_dropout",
        ),
    ],
    ids=["sft-typo", "sft-wrong-type", "peft-not-of-the-method", "peft-typo"],
)
def test_an_override_the_library_lacks_names_the_key_and_the_closest_names(
    training: TrainingConfig, build: Any, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=message):
        build(training, tmp_path, 128) if build is sft_config_from else build(training)


@pytest.mark.parametrize(
    ("setting", "native", "expected"),
    [("off", True, False), ("auto", True, True), ("auto", False, False), ("on", False, True)],
)
def test_cpu_bf16_autocast_only_where_the_profile_and_the_cpu_allow_it(
    monkeypatch: pytest.MonkeyPatch, setting: str, native: bool, expected: bool
) -> None:
    """auto: bf16 only on a CPU that multiplies bf16 natively (elsewhere it is emulated, slower
    than fp32); a GPU always trains in bf16."""
    import llm_assets.training.sft as sft

    monkeypatch.setattr(sft, "cpu_multiplies_bf16", lambda: native)
    config = TrainingConfig(cpu_bf16=setting)  # type: ignore[arg-type]
    assert sft_arguments(config, Path("checkpoints"), 512, gpu=False)["bf16"] is expected
    assert sft_arguments(config, Path("checkpoints"), 512, gpu=True)["bf16"] is True
