"""Golden hold-out and train/validation splits that never share a pair, exactly or nearly."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from llm_assets.datasets.leaks import find_leaks, leak_groups


def split_golden(
    pairs: pd.DataFrame, size: int, seed: int, threshold: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(golden, rest): `size` pairs held out, stratified by source and task in proportion to
    their share, whole leak groups at a time (see `leak_groups`)."""
    if size <= 0 or pairs.empty:
        return pairs.iloc[0:0], pairs
    groups = leak_groups(pairs, threshold)
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
    pairs: pd.DataFrame, validation_ratio: float, seed: int, threshold: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) by whole leak groups, validation about `validation_ratio` of rows."""
    groups = leak_groups(pairs, threshold)
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


@dataclass
class TrainingSplits:
    """Where the non-golden pairs went: train, validation, or out with the reason's rows."""

    train: pd.DataFrame
    validation: pd.DataFrame
    too_long: pd.DataFrame
    leaked: pd.DataFrame = field(default_factory=pd.DataFrame)


def training_splits(
    pairs: pd.DataFrame,
    golden: pd.DataFrame,
    max_length: int,
    validation_ratio: float,
    seed: int,
    threshold: float,
) -> TrainingSplits:
    """Train and validation from `pairs` (with a `token_count` column): golden pairs left out,
    pairs that match a golden pair exactly or nearly left out (a user's golden file is not cut
    along leak groups), then pairs over `max_length` tokens left out whole, never truncated."""
    candidates = pairs[~pairs["pair_id"].isin(golden["pair_id"])]
    leaked = find_leaks(golden, candidates, threshold)
    candidates = candidates[~candidates["pair_id"].isin(leaked["pair_id"])]
    over = candidates["token_count"] > max_length
    train, validation = split_train_validation(
        candidates[~over].reset_index(drop=True), validation_ratio, seed, threshold
    )
    return TrainingSplits(train, validation, candidates[over].reset_index(drop=True), leaked)
