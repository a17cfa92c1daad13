"""Leaks between held-out and training pairs, by exact and by near-duplicate match.

Two pairs match when their prompts (instruction + input) or their answers are the same after
normalization, or nearly the same: an estimated Jaccard similarity of word shingles at or above
a threshold (MinHash, the signatures cleaning's near-dedup uses). Pairs cut from the same
document section also belong together: a continuation and a Q/A of one section share its text.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from llm_assets.cleaning.dedup import NearDuplicateIndex, minhash_signatures
from llm_assets.cleaning.normalize import dedup_key

NUM_PERM = 128
SHINGLE_SIZE = 5
CANDIDATE_MARGIN = 0.3
LEAK_COLUMNS = ["pair_id", "record_id", "source", "task", "leaked_with", "match", "similarity"]
_EMPTY = np.iinfo(np.uint32).max
# Held-out rows compared with every training row per block: bounds memory to ~64 MiB.
_BLOCK_CELLS = 1 << 26


def prompt_texts(pairs: pd.DataFrame) -> list[str]:
    return [f"{i}\n{x}" for i, x in zip(pairs["instruction"], pairs["input"], strict=True)]


def _signatures(texts: list[str]) -> np.ndarray:
    return minhash_signatures(texts, NUM_PERM, SHINGLE_SIZE)


def _section_keys(pairs: pd.DataFrame) -> list[str | None]:
    if "section" not in pairs:
        return [None] * len(pairs)
    return [
        f"{source}\x00{record}\x00{section}" if section else None
        for source, record, section in zip(
            pairs["source"], pairs["record_id"], pairs["section"].fillna(""), strict=True
        )
    ]


def leak_groups(pairs: pd.DataFrame, threshold: float) -> pd.Series:
    """A group number per pair; pairs in one group must land in the same split. Linked are pairs
    whose prompts or answers match exactly or nearly (estimated Jaccard >= `threshold`), and
    pairs of the same document section; groups are the transitive closure."""
    parent = list(range(len(pairs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def link(a: int, b: int) -> None:
        parent[root(a)] = root(b)

    first_seen: dict[str, int] = {}
    exact = [
        [f"p:{dedup_key(i, x)}", f"a:{dedup_key(o)}"]
        for i, x, o in zip(pairs["instruction"], pairs["input"], pairs["output"], strict=True)
    ]
    for index, (keys, section) in enumerate(zip(exact, _section_keys(pairs), strict=True)):
        for key in keys + ([f"s:{section}"] if section else []):
            if key in first_seen:
                link(index, first_seen[key])
            else:
                first_seen[key] = index
    for texts in (prompt_texts(pairs), list(pairs["output"])):
        for a, b in _near_links(_signatures(texts), threshold):
            link(a, b)
    return pd.Series([root(i) for i in range(len(pairs))], index=pairs.index)


def _near_links(signatures: np.ndarray, threshold: float) -> Iterator[tuple[int, int]]:
    """(later, earlier) positions whose signatures agree on at least `threshold` of their
    values, found through an LSH index and then verified."""
    # An LSH tuned to the threshold itself misses about half the pairs just above it; one tuned
    # well below proposes nearly all of them, and the verification keeps only the real ones.
    index = NearDuplicateIndex(max(0.2, threshold - CANDIDATE_MARGIN), NUM_PERM, SHINGLE_SIZE)
    for position, signature in enumerate(signatures):
        if (signature == _EMPTY).all():
            index.add(str(position), signature)
            continue
        for candidate in index.candidates(signature):
            if np.mean(index.rows[candidate] == signature) >= threshold:
                yield position, candidate
        index.add(str(position), signature)


def find_leaks(
    held_out: pd.DataFrame,
    training: pd.DataFrame,
    threshold: float,
    answers: bool = True,
) -> pd.DataFrame:
    """Rows of `training` that match a row of `held_out`, with the held-out `pair_id` they leak
    (`leaked_with`), how (`exact prompt`, `exact answer`, `near prompt`, `near answer`) and the
    estimated similarity. Every training row is compared with every held-out row (no LSH, so no
    near duplicate slips through a band). `answers=False` compares prompts only, for held-out
    questions without a reference answer (red-team prompts)."""
    if held_out.empty or training.empty:
        return pd.DataFrame(columns=LEAK_COLUMNS)
    found: dict[int, tuple[str, str, float]] = {}
    held_ids = list(held_out["pair_id"])
    compared = [("prompt", prompt_texts(held_out), prompt_texts(training))]
    if answers:
        compared.append(("answer", list(held_out["output"]), list(training["output"])))
    for kind, held_texts, train_texts in compared:
        held_keys = {dedup_key(text): pid for text, pid in zip(held_texts, held_ids, strict=True)}
        for position, text in enumerate(train_texts):
            if position not in found and dedup_key(text) in held_keys:
                found[position] = (held_keys[dedup_key(text)], f"exact {kind}", 1.0)
        for position, held_position, similarity in _near_matches(
            _signatures(held_texts), _signatures(train_texts), threshold
        ):
            if position not in found:
                found[position] = (held_ids[held_position], f"near {kind}", similarity)
    rows = [
        {
            **training.iloc[position][["pair_id", "record_id", "source", "task"]].to_dict(),
            "leaked_with": leaked_with,
            "match": match,
            "similarity": round(similarity, 3),
        }
        for position, (leaked_with, match, similarity) in sorted(found.items())
    ]
    return pd.DataFrame(rows, columns=LEAK_COLUMNS)


def _near_matches(
    held: np.ndarray, train: np.ndarray, threshold: float
) -> Iterator[tuple[int, int, float]]:
    """(training position, most similar held-out position, similarity) for every training
    signature within `threshold` of a held-out one; empty signatures never match."""
    held_valid = ~(held == _EMPTY).all(axis=1)
    step = max(1, _BLOCK_CELLS // max(1, len(held) * held.shape[1]))
    for start in range(0, len(train), step):
        block = train[start : start + step]
        # (block, held) share of equal MinHash values: the Jaccard estimate.
        similarity = (block[:, None, :] == held[None, :, :]).mean(axis=2)
        similarity[:, ~held_valid] = 0.0
        similarity[(block == _EMPTY).all(axis=1)] = 0.0
        best = similarity.argmax(axis=1)
        for offset, held_position in enumerate(best):
            value = float(similarity[offset, held_position])
            if value >= threshold:
                yield start + offset, int(held_position), value
