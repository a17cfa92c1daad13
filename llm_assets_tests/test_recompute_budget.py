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
