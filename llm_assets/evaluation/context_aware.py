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

import math
from dataclasses import dataclass
from typing import Any

from llm_assets.evaluation.decoding import extend, left_padded, prefill


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
    (`closed_book_ids[row]` is None) keep their scores. `answer_positions`: the decoding steps
    to keep room for in that cache (`decoding.prefill`)."""

    def __init__(
        self,
        model: Any,
        closed_book_ids: list[list[int] | None],
        pad_id: int,
        contrast: ContextContrast,
        answer_positions: int = 0,
    ) -> None:
        self.model = model
        self.answer_positions = answer_positions
        self.rows = [row for row, ids in enumerate(closed_book_ids) if ids is not None]
        self.prompts = [ids for ids in closed_book_ids if ids is not None]
        self.pad_id = pad_id
        self.contrast = contrast
        self.cache: Any = None
        self.attention: Any = None
        self.row_index: Any = None  # `rows` as a tensor on the model's device, from the first step

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not self.rows:
            return scores
        import torch

        with torch.no_grad():
            if self.cache is None:
                self.row_index = torch.tensor(self.rows, device=input_ids.device)
                closed_logits = self._start(input_ids.device)
            else:
                closed_logits, self.cache, self.attention = extend(
                    self.model, input_ids[self.row_index, -1:], self.attention, self.cache
                )
        rows = self.row_index
        scores = scores.clone()
        scores[rows] = contrasted_log_probs(scores[rows], closed_logits, self.contrast).to(
            scores.dtype
        )
        return scores

    def _start(self, device: Any) -> Any:
        input_ids, attention = left_padded(self.prompts, self.pad_id)
        self.attention = attention.to(device)
        closed_logits, self.cache = prefill(
            self.model, input_ids.to(device), self.attention, self.answer_positions
        )
        return closed_logits

    def keep_rows(self, kept: list[int]) -> None:
        """The batch now holds only its rows `kept` (positions before the drop, in order), as
        `decode_batch` drops answers that ended: the closed-book rows of the others are
        dropped too, and the rest renumbered."""
        import torch

        renumbered = {old: new for new, old in enumerate(kept)}
        staying = [position for position, row in enumerate(self.rows) if row in renumbered]
        self.rows = [renumbered[self.rows[position]] for position in staying]
        self.prompts = [self.prompts[position] for position in staying]
        if self.cache is None:
            return
        index = torch.tensor(staying, dtype=torch.long, device=self.attention.device)
        self.cache.batch_select_indices(index)
        self.attention = self.attention[index]
        self.row_index = torch.tensor(self.rows, device=self.attention.device)
