"""Golden hold-out and train/validation splits that never share a pair."""

from __future__ import annotations

import numpy as np
import pandas as pd

from llm_assets.cleaning.normalize import dedup_key


def leak_groups(pairs: pd.DataFrame) -> pd.Series:
    """A key per pair; pairs with the same key must land in the same split. Two pairs share a key
    when their prompt or their answer is the same after normalization."""
    prompt_keys = [
        dedup_key(i, x) for i, x in zip(pairs["instruction"], pairs["input"], strict=True)
    ]
    answer_keys = [dedup_key(o) for o in pairs["output"]]
    parent = list(range(len(pairs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[str, int] = {}
    for index, keys in enumerate(zip(prompt_keys, answer_keys, strict=True)):
        for key in keys:
            if key in first_seen:
                parent[root(index)] = root(first_seen[key])
            else:
                first_seen[key] = index
    return pd.Series([root(i) for i in range(len(pairs))], index=pairs.index)


def split_golden(pairs: pd.DataFrame, size: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(golden, rest): `size` pairs held out, stratified by source and task in proportion to
    their share, whole leak groups at a time."""
    if size <= 0 or pairs.empty:
        return pairs.iloc[0:0], pairs
    groups = leak_groups(pairs)
    rng = np.random.default_rng(seed)
    strata = pairs["source"].astype(str) + "/" + pairs["task"].astype(str)
    share = strata.value_counts(normalize=True)
    chosen: list[int] = []
    for stratum, fraction in share.items():
        quota = max(1, round(fraction * size))
        stratum_groups = groups[strata == stratum].unique()
        rng.shuffle(stratum_groups)
        taken = 0
        for group in stratum_groups:
            if taken >= quota:
                break
            members = groups.index[groups == group].tolist()
            chosen.extend(members)
            taken += len(members)
    # Never hold out more than half the data: a small corpus must still train.
    chosen = chosen[: min(size, len(pairs) // 2)]
    chosen_groups = set(groups.loc[chosen])
    in_golden = groups.isin(chosen_groups)
    return pairs[in_golden].reset_index(drop=True), pairs[~in_golden].reset_index(drop=True)


def split_train_validation(
    pairs: pd.DataFrame, validation_ratio: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) by whole leak groups, validation about `validation_ratio` of rows."""
    groups = leak_groups(pairs)
    unique = groups.unique()
    rng = np.random.default_rng(seed + 1)
    rng.shuffle(unique)
    target = max(1, round(validation_ratio * len(pairs)))
    validation_groups: set[int] = set()
    count = 0
    sizes = groups.value_counts()
    for group in unique:
        if count >= target:
            break
        validation_groups.add(group)
        count += int(sizes[group])
    in_validation = groups.isin(validation_groups)
    return pairs[~in_validation].reset_index(drop=True), pairs[in_validation].reset_index(drop=True)


def shared_pairs(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """Rows of `left` whose prompt or answer also appears in `right` (a leak between splits)."""
    right_keys = {
        dedup_key(i, x) for i, x in zip(right["instruction"], right["input"], strict=True)
    }
    right_keys |= {dedup_key(o) for o in right["output"]}
    leaked = [
        dedup_key(i, x) in right_keys or dedup_key(o) in right_keys
        for i, x, o in zip(left["instruction"], left["input"], left["output"], strict=True)
    ]
    return left[leaked]
