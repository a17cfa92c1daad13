"""Context-aware decoding (Shi et al. 2024, "Trusting Your Evidence: Hallucinate Less with
Context-aware Decoding", arXiv 2305.14739): each next token is chosen from

    (1 + alpha) * log p(token | context, question) - alpha * log p(token | question)

so a token the retrieved context makes likelier (a price, a port, a flag) gains over what the
model would say from memory, which a 135M model says with confidence. Tokens the grounded
model finds implausible (below `plausibility` times its top token's probability) are never
chosen, so the contrast only reorders what the grounded model would consider anyway (the
adaptive plausibility constraint of contrastive decoding, Li et al. 2023).

The closed-book prompt is the same conversation without the context; it is decoded alongside,
fed the same answer tokens, so both read the same answer so far.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ContextContrast:
    """`alpha`: how far the grounded distribution is pushed away from the closed-book one
    (0: plain decoding). `plausibility`: tokens below this share of the top grounded token's
    probability are excluded."""

    alpha: float
    plausibility: float = 0.1


def contrasted_log_probs(
    grounded_logits: Any, closed_book_logits: Any, contrast: ContextContrast
) -> Any:
    """The contrasted scores over the vocabulary (last axis), for torch tensors or numpy arrays
    alike: implausible tokens get -inf."""
    if _is_numpy(grounded_logits):
        import numpy as np

        grounded = _np_log_softmax(grounded_logits.astype(np.float64))
        closed = _np_log_softmax(closed_book_logits.astype(np.float64))
        scores = (1 + contrast.alpha) * grounded - contrast.alpha * closed
        floor = grounded.max(axis=-1, keepdims=True) + _log(contrast.plausibility)
        return np.where(grounded >= floor, scores, -np.inf)
    import torch

    grounded = torch.log_softmax(grounded_logits.float(), dim=-1)
    closed = torch.log_softmax(closed_book_logits.float(), dim=-1)
    scores = (1 + contrast.alpha) * grounded - contrast.alpha * closed
    floor = grounded.max(dim=-1, keepdim=True).values + _log(contrast.plausibility)
    return scores.masked_fill(grounded < floor, float("-inf"))


def _log(share: float) -> float:
    return math.log(share) if share > 0 else -math.inf


def _is_numpy(value: Any) -> bool:
    return type(value).__module__ == "numpy"


def _np_log_softmax(logits: Any) -> Any:
    import numpy as np

    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class ClosedBookContrast:
    """A transformers logits processor for one left-padded batch of `generate`: it decodes the
    batch's closed-book prompts alongside (with their own key/value cache), and replaces the
    scores of every row that has context with `contrasted_log_probs`. Rows without context
    (`closed_book_ids[row]` is None) keep their scores."""

    def __init__(
        self,
        model: Any,
        closed_book_ids: list[list[int] | None],
        pad_id: int,
        contrast: ContextContrast,
    ) -> None:
        self.model = model
        self.rows = [row for row, ids in enumerate(closed_book_ids) if ids is not None]
        self.prompts = [ids for ids in closed_book_ids if ids is not None]
        self.pad_id = pad_id
        self.contrast = contrast
        self.cache: Any = None
        self.attention: Any = None
        self.row_index: Any = None  # `rows` as a tensor on the model's device, from the first step
        # transformers 5 names the key/value cache `cache`; 4.x `past_key_values`.
        parameters = inspect.signature(model.forward).parameters
        self.cache_argument = "cache" if "cache" in parameters else "past_key_values"
        # Only the last position's logits are read: the closed-book prompt's head over the
        # whole vocabulary at every other position would be computed for nothing.
        self.last_logits_only = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not self.rows:
            return scores
        import torch

        with torch.no_grad():
            if self.cache is None:
                self.row_index = torch.tensor(self.rows, device=input_ids.device)
                closed_logits = self._start(input_ids.device)
            else:
                last = input_ids[self.row_index, -1:]
                self.attention = torch.cat(
                    [self.attention, torch.ones_like(last, dtype=self.attention.dtype)], dim=1
                )
                positions = self.attention.sum(dim=1, keepdim=True) - 1
                output = self.model(
                    input_ids=last,
                    attention_mask=self.attention,
                    position_ids=positions,
                    use_cache=True,
                    **{self.cache_argument: self.cache},
                )
                self.cache = _cache_of(output)
                closed_logits = output.logits[:, -1, :]
        rows = self.row_index
        scores = scores.clone()
        scores[rows] = contrasted_log_probs(scores[rows], closed_logits, self.contrast).to(
            scores.dtype
        )
        return scores

    def _start(self, device: Any) -> Any:
        import torch

        width = max(len(ids) for ids in self.prompts)
        input_ids = torch.full((len(self.prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(self.prompts), width), dtype=torch.long)
        for row, ids in enumerate(self.prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
        self.attention = attention.to(device)
        output = self.model(
            input_ids=input_ids.to(device),
            attention_mask=self.attention,
            position_ids=positions.to(device),
            use_cache=True,
            **self.last_logits_only,
        )
        self.cache = _cache_of(output)
        return output.logits[:, -1, :]


def _cache_of(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values
