"""Token lengths of chat rows under the base model's tokenizer and chat template."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

STAT_COLUMNS = ["split", "rows", "tokens", "min", "mean", "p50", "p90", "p99", "max", "over_max"]


def conversation_token_counts(
    tokenizer: Any, conversations: Iterable[Sequence[dict[str, str]]]
) -> list[int]:
    """Tokens of each whole conversation as training sees it: rendered with the tokenizer's chat
    template and tokenized in one step, exactly as trl's SFTTrainer does."""
    return [
        len(
            tokenizer.apply_chat_template(
                [dict(message) for message in messages], tokenize=True, return_dict=False
            )
        )
        for messages in conversations
    ]


def length_stats(counts_by_split: dict[str, Sequence[int]], max_length: int) -> pd.DataFrame:
    """Rows, total tokens, min/mean/percentiles/max and rows over `max_length`, per split."""
    rows = []
    for split, counts in counts_by_split.items():
        values = np.asarray(counts, dtype=np.int64)
        if values.size == 0:
            rows.append({"split": split, "rows": 0, "tokens": 0, "over_max": 0})
            continue
        rows.append(
            {
                "split": split,
                "rows": int(values.size),
                "tokens": int(values.sum()),
                "min": int(values.min()),
                "mean": round(float(values.mean()), 1),
                "p50": int(np.percentile(values, 50)),
                "p90": int(np.percentile(values, 90)),
                "p99": int(np.percentile(values, 99)),
                "max": int(values.max()),
                "over_max": int((values > max_length).sum()),
            }
        )
    return pd.DataFrame(rows, columns=STAT_COLUMNS)
