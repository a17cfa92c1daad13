"""The SFT loss on answer tokens only.

trl's `SFTTrainer` already projects hidden states through the LM head in tiles (its fused LM
head), never holding the `(batch, length, vocabulary)` logits; but off GPU it scores every
position, prompt and padding included, in tiles of up to 4,096 tokens by 32,768 vocabulary
entries (about 0.5 GB each in fp32, several alive at once). With retrieved context, most of a
row is prompt, whose predictions the loss masks anyway. Here the backbone's hidden states are
cut to the positions whose next token is an answer token first, and trl's own tiled kernel
(`trl.kernels.ChunkedLogProbFunction`) scores only those, with a narrower vocabulary tile: the
same loss, gradient and metrics, without the memory or the work for masked positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Vocabulary entries per tile: 8,192 x (answer tokens in a micro-batch) x 4 bytes, e.g. 33 MB
# for 1,000 answer tokens, instead of trl's 32,768 x every position.
VOCABULARY_TILE = 8192


@dataclass(frozen=True)
class AnswerLoss:
    """The mean negative log-likelihood of the answer tokens (divided by `num_items_in_batch`
    when given, as transformers does under gradient accumulation), and what trl logs."""

    loss: Any  # a scalar tensor with its graph
    answer_tokens: int
    correct_tokens: int  # the answer token was the model's top-1 prediction
    entropy_sum: float


def causal_backbone(model: Any) -> Any:
    """The transformer body of a causal LM (under a peft wrapper too): the module whose output
    is the last hidden state the LM head projects."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.base_model


def answer_loss(
    model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None, tile: int = VOCABULARY_TILE
) -> AnswerLoss:
    """The loss of `inputs` (a trl collator batch with `labels`, -100 where no loss is taken)."""
    import torch
    from trl.kernels import ChunkedLogProbFunction

    labels = inputs["labels"]
    body_inputs = {k: v for k, v in inputs.items() if k not in ("labels", "use_cache")}
    hidden = causal_backbone(model)(**body_inputs, use_cache=False).last_hidden_state
    targets = labels[:, 1:]
    scored = targets != -100
    answer_tokens = int(scored.sum())
    if answer_tokens == 0:
        # A differentiable zero: the backward pass of a batch without answers must not fail.
        return AnswerLoss(0.0 * hidden.sum(), answer_tokens=0, correct_tokens=0, entropy_sum=0.0)
    head = model.get_output_embeddings()
    log_probs, entropy, _, _, is_top1 = ChunkedLogProbFunction.apply(
        hidden[:, :-1][scored],
        head.weight,
        head.bias,
        targets[scored],
        1.0,
        tile,
        None,
        1.0,
        ("entropy", "is_top1"),
    )
    denominator = num_items_in_batch if num_items_in_batch is not None else answer_tokens
    with torch.no_grad():
        correct, entropy_sum = int(is_top1.sum()), float(entropy.sum())
    return AnswerLoss(-log_probs.sum() / denominator, answer_tokens, correct, entropy_sum)


def answer_only_sft_trainer() -> type:
    """trl's `SFTTrainer` with the training and validation loss of `answer_loss`; logging and
    everything else are trl's."""
    from trl import SFTTrainer

    class AnswerOnlySFTTrainer(SFTTrainer):  # type: ignore[misc]
        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            # Training across several processes (DDP and FSDP hook into the model's own
            # forward, which must not be stepped around) and prompt methods keep trl's loss, as
            # does an evaluation that needs logits (compute_metrics); a loss-only evaluation
            # (the validation loss) is scored on answer positions like training.
            shared = self.accelerator.num_processes > 1
            wrapped = self.accelerator.unwrap_model(model) is not model
            needs_logits = return_outputs and (model.training or self.compute_metrics is not None)
            if shared or wrapped or needs_logits or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            # The backbone is called directly, past the forward accelerate wraps in autocast
            # under mixed precision: the same autocast is entered here.
            with self.accelerator.autocast():
                result = answer_loss(model, inputs, num_items_in_batch)
            self._record(result, inputs, "train" if model.training else "eval")
            # Trainer.prediction_step takes (loss, outputs) and, loss only, reads no logits.
            return (result.loss, {}) if return_outputs else result.loss

        def _record(self, result: AnswerLoss, inputs: dict[str, Any], mode: str) -> None:
            """The figures trl's own loss logs, into its `_metrics` store (read by its `log`)."""
            metrics = getattr(self, "_metrics", None)
            if metrics is None:
                return
            tokens = result.answer_tokens
            metrics[mode]["entropy"].append(result.entropy_sum / tokens if tokens else 0.0)
            accuracy = result.correct_tokens / tokens if tokens else 0.0
            metrics[mode]["mean_token_accuracy"].append(accuracy)
            if (
                mode == "train"
                and "attention_mask" in inputs
                and hasattr(self, "_total_train_tokens")
            ):
                self._total_train_tokens += int(inputs["attention_mask"].sum())
                metrics["train"]["num_tokens"] = [self._total_train_tokens]

    return AnswerOnlySFTTrainer
