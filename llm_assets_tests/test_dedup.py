import pickle
import re

import numpy as np
import pandas as pd

from llm_assets.cleaning.dedup import (
    NearDuplicateIndex,
    mark_exact_duplicates,
    mark_near_duplicates,
    minhash_signatures,
    shingle_hashes,
)

SYNC_PAUSED = (
    "Aurora paused sync on LAPTOP-ISABEL with a message saying 'Unusual activity detected'. "
    "I did rename a few thousand photos with a batch tool today and now nothing uploads. "
    "Is this ransomware protection, and how do I get sync going again without losing files?"
)
SYNC_PAUSED_RESOLUTION = (
    "Aurora Sync pauses when it sees mass renames with unknown extensions, a typical sign of "
    "ransomware. If you made the changes yourself, click Resume in the status window."
)
INSTALL_LINUX = (
    "I installed Aurora Sync on Ubuntu 24.04 but there is no tray icon anywhere and the "
    "service does not seem to start after login. How can I check whether it is running?"
)


def tickets(*texts: str, source: str = "tickets", first_id: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id": [f"T-{first_id + i}" for i in range(len(texts))],
            "source": source,
            "text": list(texts),
            "response": SYNC_PAUSED_RESOLUTION,
        }
    )


def test_mark_exact_duplicates_names_the_first() -> None:
    records = tickets(SYNC_PAUSED, INSTALL_LINUX, SYNC_PAUSED.upper())
    assert mark_exact_duplicates(records).tolist() == [pd.NA, pd.NA, "tickets/T-1"]


def test_mark_near_duplicates_points_at_the_kept_record() -> None:
    one_word_changed = SYNC_PAUSED.replace("today", "yesterday")
    sentence_added = SYNC_PAUSED + " Any update on this?"
    records = tickets(SYNC_PAUSED, INSTALL_LINUX, one_word_changed, sentence_added)

    duplicate_of, index = mark_near_duplicates(records)

    assert duplicate_of.tolist() == [pd.NA, pd.NA, "tickets/T-1", "tickets/T-1"]
    assert index.keys == ["tickets/T-1", "tickets/T-2"]


def test_mark_near_duplicates_keeps_different_questions_with_the_same_answer() -> None:
    other_question = (
        "Sync stopped on my Mac after the update and the status window says it is paused. "
        "I did not rename anything. Do I need to reinstall the app to get it working?"
    )
    duplicate_of, _ = mark_near_duplicates(tickets(SYNC_PAUSED, other_question))
    assert duplicate_of.isna().all()


def test_mark_near_duplicates_reuses_a_saved_index_across_runs(tmp_path) -> None:
    _, index = mark_near_duplicates(tickets(SYNC_PAUSED, INSTALL_LINUX))
    index.save(tmp_path / "near_dup.npz")
    reloaded = NearDuplicateIndex.load(tmp_path / "near_dup.npz")
    unpickled = pickle.loads(pickle.dumps(index))

    later = tickets(INSTALL_LINUX + " Thanks again.", source="chat", first_id=100)
    for earlier in (reloaded, unpickled):
        duplicate_of, updated = mark_near_duplicates(later, index=earlier)
        assert duplicate_of.tolist() == ["tickets/T-2"]
        assert len(updated) == 2


def test_mark_near_duplicates_refuses_an_index_built_with_other_settings() -> None:
    _, index = mark_near_duplicates(tickets(SYNC_PAUSED), shingle_size=3)
    try:
        mark_near_duplicates(tickets(INSTALL_LINUX), index=index)
    except ValueError as error:
        assert "shingle_size=3" in str(error)
    else:
        raise AssertionError("an index built with other settings was accepted")


def test_mark_near_duplicates_never_marks_empty_texts() -> None:
    records = tickets("", "  ", SYNC_PAUSED)
    records["response"] = None
    duplicate_of, index = mark_near_duplicates(records)
    assert duplicate_of.isna().all()
    assert index.keys == ["tickets/T-3"]


def test_minhash_signatures_match_datasketch() -> None:
    from datasketch import MinHash

    texts = [SYNC_PAUSED, "too short", INSTALL_LINUX]
    signatures = minhash_signatures(texts, num_perm=64, shingle_size=3)

    from llm_assets.cleaning.dedup import _token_hashes

    shingles, counts = shingle_hashes(*_token_hashes(texts), shingle_size=3)
    start = 0
    for signature, count in zip(signatures, counts, strict=True):
        expected = MinHash(num_perm=64, seed=1, hashfunc=int)
        expected.update_batch(shingles[start : start + count].tolist())
        start += count
        assert np.array_equal(signature, expected.hashvalues)
    words = [len(re.findall(r"\w+", text)) for text in texts]
    assert counts.tolist() == [words[0] - 2, 1, words[2] - 2]
