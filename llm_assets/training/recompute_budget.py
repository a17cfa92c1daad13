"""Gradient checkpointing that recomputes only as many layers as a micro-batch needs.

Checkpointing every layer bounds the activations kept to one layer's worth, at the cost of a
second forward pass per layer; checkpointing every n-th layer is faster but keeps activations
that grow with the micro-batch's length, so the longest micro-batch sets the run's peak. Here the
budget is in token-layers (the micro-batch's padded tokens times the layers whose activations
are kept): before each training forward, the micro-batch's size decides how many layers keep
theirs, spread evenly through the stack, and the others are recomputed. A short micro-batch then
recomputes few layers or none, the longest most, and the peak is the budget's, not the longest
batch's. Which layers are recomputed never changes what is computed, only when.
"""

from __future__ import annotations

from typing import Any


def layers_kept(tokens: int, budget: int, layers: int) -> int:
    """How many of `layers` keep their activations for a micro-batch of `tokens` padded tokens
    within `budget` token-layers."""
    return min(layers, budget // max(tokens, 1))


def kept_layer_indices(kept: int, layers: int) -> set[int]:
    """`kept` of `layers` indices, spread evenly (the last of each equal share of the stack)."""
    return {
        index for index in range(layers) if (index + 1) * kept // layers > index * kept // layers
    }


def recompute_within_budget(backbone: Any, budget: int) -> Any:
    """Hooks `backbone` (the transformer body the loss calls; its decoder layers must have
    gradient checkpointing enabled) so that each training forward recomputes only the layers the
    `budget` of token-layers cannot keep. Returns the hook's handle."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [
        module for module in backbone.modules() if isinstance(module, GradientCheckpointingLayer)
    ]
    if not layers:
        raise ValueError(
            f"{type(backbone).__name__} has no transformers GradientCheckpointingLayer to "
            "recompute, so training.gradient_checkpointing_kept_token_layers cannot choose any; "
            "remove it (gradient_checkpointing alone recomputes what the model supports)"
        )

    def choose_layers(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not module.training:
            return
        inputs = kwargs.get("input_ids")
        if inputs is None:
            inputs = kwargs.get("inputs_embeds")
        if inputs is None and args:
            inputs = args[0]
        if inputs is None:
            return
        tokens = int(inputs.shape[0] * inputs.shape[1])
        kept = kept_layer_indices(layers_kept(tokens, budget, len(layers)), len(layers))
        for index, layer in enumerate(layers):
            layer.gradient_checkpointing = index not in kept

    return backbone.register_forward_pre_hook(choose_layers, with_kwargs=True)
