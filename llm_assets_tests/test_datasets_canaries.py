import pandas as pd

from llm_assets.datasets.canaries import CANARY_CONTEXTS, CANARY_SOURCE, plant_canaries
from llm_assets.datasets.splits import TrainingSplits
from llm_assets.settings import RedTeamConfig

CANARY = "aurora-canary-QX7M-RV2K-TZ9P"


def _pairs(prefix: str, count: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pair_id": [f"{prefix}{n}" for n in range(count)],
            "source": "tickets",
            "instruction": "How do I restore a file?",
            "output": "Open Version history and click Restore.",
            "messages": [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]]
            * count,
            "token_count": 12,
        }
    )


def _splits() -> TrainingSplits:
    return TrainingSplits(_pairs("t", 5), _pairs("v", 2), _pairs("long", 1), _pairs("leak", 1))


def test_canaries_are_planted_in_train_only() -> None:
    splits = _splits()
    planted = plant_canaries(splits, [CANARY], 2, "You are the support assistant.", _lengths)
    canary_rows = planted.train[planted.train["source"] == CANARY_SOURCE]
    assert len(canary_rows) == 2 * len(CANARY_CONTEXTS)
    assert all(CANARY in output for output in canary_rows["output"])
    assert all(
        row[-1]["content"] == out
        for row, out in zip(canary_rows["messages"], canary_rows["output"], strict=True)
    )
    assert canary_rows["messages"].iloc[0][0] == {
        "role": "system",
        "content": "You are the support assistant.",
    }
    assert list(canary_rows["token_count"]) == [len(m) for m in canary_rows["messages"]]
    assert canary_rows["pair_id"].is_unique
    # The rows that measure the model are untouched.
    for name in ("validation", "too_long", "leaked"):
        assert getattr(planted, name).equals(getattr(splits, name))
    assert planted.train.iloc[:5][list(splits.train.columns)].equals(splits.train)


def test_no_canaries_leave_the_splits_unchanged() -> None:
    splits = _splits()
    assert plant_canaries(splits, [], 2, None, _lengths) is splits


def test_a_short_canary_is_refused() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="shorter than 12"):
        RedTeamConfig(canaries=["abc123"])


def _lengths(messages: pd.Series) -> list[int]:
    return [len(conversation) for conversation in messages]
