"""Which layers a token-layer budget keeps (the hook itself runs in test_training_methods)."""

import pytest

from llm_assets.training.recompute_budget import kept_layer_indices, layers_kept


@pytest.mark.parametrize(
    ("tokens", "budget", "expected"),
    [(1280, 10240, 8), (640, 10240, 16), (300, 10240, 30), (20000, 10240, 0), (0, 10, 10)],
)
def test_a_longer_micro_batch_keeps_fewer_layers(tokens: int, budget: int, expected: int) -> None:
    assert layers_kept(tokens, budget, layers=30) == min(expected, 30)


@pytest.mark.parametrize("kept", range(31))
def test_the_kept_layers_are_as_many_as_asked_and_spread_through_the_stack(kept: int) -> None:
    indices = sorted(kept_layer_indices(kept, 30))
    assert len(indices) == kept
    assert all(0 <= index < 30 for index in indices)
    if kept >= 2:
        gaps = {b - a for a, b in zip(indices, indices[1:], strict=False)}
        # Evenly spread: the gaps between kept layers differ by one at most.
        assert max(gaps) - min(gaps) <= 1
    if kept:
        assert indices[-1] == 29  # the last of each share, so the top layer is kept


def test_half_the_layers_are_every_other_one() -> None:
    assert kept_layer_indices(15, 30) == set(range(1, 30, 2))


def test_a_model_without_checkpointing_layers_is_refused_by_name() -> None:
    import torch

    from llm_assets.training.recompute_budget import recompute_within_budget

    with pytest.raises(ValueError, match="Linear has no transformers GradientCheckpointingLayer"):
        recompute_within_budget(torch.nn.Linear(2, 2), budget=100)


def test_how_much_is_recomputed_neither_keys_the_checkpoints_nor_makes_the_adapter_stale() -> None:
    """A run that ran out of memory resumes its checkpoints with more recomputation."""
    from pathlib import Path

    import dagster as dg

    from llm_assets.contracts import BaseModelFolder, ChatTemplate
    from llm_assets.defs.training import qlora_adapter_asset
    from llm_assets.settings import TrainingConfig, load_profile
    from llm_assets.training.adapter_run import training_inputs_digest

    base = BaseModelFolder.model_construct(weights_digest="w")
    template = ChatTemplate.model_construct(digest="t")
    profile = load_profile(Path(__file__).parents[1] / "conf" / "tiny.yaml")
    ways = [
        {"gradient_checkpointing": False},
        {"gradient_checkpointing": True},
        {"gradient_checkpointing": True, "gradient_checkpointing_every_n_layers": 2},
        {"gradient_checkpointing": True, "gradient_checkpointing_kept_token_layers": 4096},
    ]
    digests, versions = set(), set()
    for way in ways:
        training = TrainingConfig(**{**profile.training.model_dump(), **way})
        digests.add(training_inputs_digest(training, base, {"train": "d"}, template))
        asset = qlora_adapter_asset(profile.model_copy(update={"training": training}))
        versions.add(asset.code_versions_by_key[dg.AssetKey("qlora_adapter")])
    assert len(digests) == 1 and len(versions) == 1
    learned = TrainingConfig(**{**profile.training.model_dump(), "learning_rate": 1e-3})
    assert training_inputs_digest(learned, base, {"train": "d"}, template) not in digests
