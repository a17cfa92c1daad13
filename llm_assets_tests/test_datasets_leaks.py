import pandas as pd

from llm_assets.datasets.leaks import find_leaks, leak_groups
from llm_assets.settings import load_profile

from .conftest import TINY_PROFILE

ANSWER = (
    "Aurora Sync pauses when it sees mass renames with unknown extensions, which is a typical "
    "sign of ransomware. If you made the changes yourself, you can safely click Resume in the "
    "status window. If files now have extensions you don't recognise, keep sync paused and "
    "disconnect the computer from the network."
)


def _pair(pair_id: str, instruction: str, output: str, section: str = "") -> dict[str, str]:
    return {
        "pair_id": pair_id,
        "record_id": f"r-{pair_id}",
        "source": "tickets",
        "task": "support_answer",
        "section": section,
        "instruction": instruction,
        "input": "",
        "output": output,
    }


GOLDEN = pd.DataFrame([_pair("g1", "Sync paused after renaming photos", ANSWER)])


def test_near_duplicate_answer_is_a_leak() -> None:
    # The same resolution with a greeting added: no exact match, but nearly the same text.
    reworded = "Thanks for the report. " + ANSWER
    training = pd.DataFrame(
        [
            _pair("t1", "Why did sync stop on my laptop?", reworded),
            _pair("t2", "How do I share a folder?", "Right-click the folder and choose Share."),
        ]
    )
    leaks = find_leaks(GOLDEN, training, threshold=0.8)
    assert list(leaks["pair_id"]) == ["t1"]
    assert leaks.iloc[0]["leaked_with"] == "g1"
    assert leaks.iloc[0]["match"] == "near answer"
    assert 0.8 <= leaks.iloc[0]["similarity"] < 1.0


def test_exact_prompt_after_normalization_is_a_leak() -> None:
    training = pd.DataFrame([_pair("t1", "  SYNC paused after renaming photos ", "Other answer.")])
    leaks = find_leaks(GOLDEN, training, threshold=0.8)
    assert leaks[["pair_id", "match"]].to_dict("records") == [
        {"pair_id": "t1", "match": "exact prompt"}
    ]


def test_unrelated_pairs_are_not_leaks() -> None:
    training = pd.DataFrame(
        [_pair("t1", "How do I cancel Pro?", "Open Billing and click Cancel plan.")]
    )
    assert find_leaks(GOLDEN, training, threshold=0.8).empty


def test_leak_groups_join_near_duplicates_and_sections_of_one_document() -> None:
    pairs = pd.DataFrame(
        [
            _pair("a", "Sync paused", ANSWER),
            _pair("b", "Paused sync again", "Hello! " + ANSWER),
            _pair("c", "Explain 'Recovery'", "Print the key.", section="Recovery"),
            _pair("d", "Continue 'Recovery'", "Support cannot reset it.", section="Recovery"),
            _pair("e", "Unrelated", "Something else entirely."),
        ]
    ).assign(record_id=["r1", "r2", "doc", "doc", "r5"])
    groups = leak_groups(pairs, threshold=0.8).tolist()
    assert groups[0] == groups[1]
    assert groups[2] == groups[3]
    assert len({groups[0], groups[2], groups[4]}) == 3


def test_golden_leak_check_fails_on_a_near_duplicate_in_training() -> None:
    import dagster as dg
    from datasets import Dataset, DatasetDict

    from llm_assets.defs.datasets import build_dataset_defs

    _, checks = build_dataset_defs(load_profile(TINY_PROFILE))
    check = next(
        c
        for c in checks
        if any(key.name == "sft_dataset_excludes_golden_set" for key in c.check_keys)
    )
    leaky = pd.DataFrame([_pair("t1", "Sync stopped", "Hi there. " + ANSWER)])
    clean = pd.DataFrame([_pair("t2", "How do I cancel Pro?", "Open Billing, Cancel plan.")])
    for frame, passed in ((leaky, False), (clean, True)):
        splits = DatasetDict(
            train=Dataset.from_pandas(frame), validation=Dataset.from_pandas(clean)
        )
        result = check(sft_dataset=splits, golden_set=GOLDEN)
        assert isinstance(result, dg.AssetCheckResult)
        assert result.passed is passed
