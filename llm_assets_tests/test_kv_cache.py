"""The key/value cache evaluation decodes with: positions written in place into buffers, every
value and every logit the same as transformers' concatenating `DynamicLayer`."""

from typing import Any

import pytest

from llm_assets.evaluation.decoding import extend, prefill
from llm_assets.evaluation.kv_cache import preallocated_cache
from llm_assets_tests.test_evaluation_batching import tiny_model
from llm_assets_tests.test_evaluation_decoding import QUESTIONS, chat_batch


def states(generator: Any, rows: int, positions: int) -> tuple[Any, Any]:
    import torch

    shape = (rows, 2, positions, 4)
    return torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)


def layers(spare_positions: int) -> tuple[Any, Any]:
    """(transformers' DynamicLayer, a PreallocatedLayer) for the same layer."""
    from transformers import LlamaConfig
    from transformers.cache_utils import DynamicLayer

    config = LlamaConfig(
        hidden_size=8, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2
    )
    cache = preallocated_cache(_ConfigOnly(config), spare_positions)
    assert cache is not None
    return DynamicLayer(), cache.layers[0]


class _ConfigOnly:
    def __init__(self, config: Any) -> None:
        self.config = config


@pytest.mark.parametrize("spare_positions", [0, 2, 20])
def test_the_layer_holds_what_a_concatenating_layer_holds_through_every_change(
    spare_positions: int,
) -> None:
    """Prompt, single steps, rows leaving, a crop and a reorder: after each, both layers return
    and hold equal keys and values; too little room (0 or 2 spare positions) only moves the
    cache into bigger buffers."""
    import torch

    generator = torch.Generator().manual_seed(0)
    concatenating, preallocated = layers(spare_positions)

    def same_update(rows: int, positions: int) -> None:
        keys, values = states(generator, rows, positions)
        expected = concatenating.update(keys, values)
        got = preallocated.update(keys, values)
        for want, have in zip(expected, got, strict=True):
            assert torch.equal(want, have)
        assert torch.equal(concatenating.keys, preallocated.keys)
        assert torch.equal(concatenating.values, preallocated.values)
        assert preallocated.get_seq_length() == concatenating.get_seq_length()

    same_update(rows=4, positions=5)
    for _ in range(3):
        same_update(rows=4, positions=1)
    rows_left = torch.tensor([0, 2, 3])
    concatenating.batch_select_indices(rows_left)
    preallocated.batch_select_indices(rows_left)
    for _ in range(3):
        same_update(rows=3, positions=1)
    concatenating.crop(-2)
    preallocated.crop(-2)
    same_update(rows=3, positions=1)
    order = torch.tensor([2, 0, 1])
    concatenating.reorder_cache(order)
    preallocated.reorder_cache(order)
    same_update(rows=3, positions=2)
    assert preallocated.get_seq_length() == 5 + 3 + 3 - 2 + 1 + 2


def test_steps_write_into_the_buffer_without_moving_it() -> None:
    import torch

    generator = torch.Generator().manual_seed(1)
    _, preallocated = layers(spare_positions=4)
    preallocated.update(*states(generator, 2, 3))
    buffer = preallocated.keys.data_ptr()
    for _ in range(4):
        preallocated.update(*states(generator, 2, 1))
        assert preallocated.keys.data_ptr() == buffer
    preallocated.update(*states(generator, 2, 1))  # a fifth step: no room left, new buffers
    assert preallocated.keys.data_ptr() != buffer
    assert preallocated.get_seq_length() == 8


def test_a_model_decodes_the_same_logits_on_either_cache() -> None:
    """The tiny Llama, prompts of different lengths, rows leaving midway: every step's logits
    are equal to the bit."""
    import torch

    from llm_assets.evaluation.kv_cache import _preallocated_layer_class

    tokenizer, model = tiny_model(seed=7)
    input_ids, attention, _ = chat_batch(tokenizer, QUESTIONS)
    steps = {}
    for answer_positions in (0, 6):
        mask = attention
        with torch.no_grad():
            logits, cache = prefill(model, input_ids, mask, answer_positions)
            kinds = {type(layer) for layer in cache.layers}
            assert (kinds == {_preallocated_layer_class()}) == (answer_positions > 0)
            seen = [logits]
            for step in range(8):  # past the room kept: the last steps move the buffers
                tokens = logits.argmax(dim=-1)[:, None]
                if step == 3:
                    kept = torch.tensor([0, 2, 3])
                    cache.batch_select_indices(kept)
                    mask, tokens = mask[kept], tokens[kept]
                logits, cache, mask = extend(model, tokens, mask, cache)
                seen.append(logits)
        steps[answer_positions] = seen
    for concatenated, preallocated in zip(steps[0], steps[6], strict=True):
        assert torch.equal(concatenated, preallocated)


def test_models_whose_cache_is_not_plain_keep_their_own() -> None:
    """A sliding-window layer is not a `DynamicLayer`: the model builds its own cache."""
    from transformers import MistralConfig

    config = MistralConfig(
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        sliding_window=16,
    )
    assert preallocated_cache(_ConfigOnly(config), 8) is None
    assert preallocated_cache(object(), 8) is None
