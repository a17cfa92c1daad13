"""What the retrieval index may hold: the records of the knowledge sources, never the record a
golden pair was answered from.

A ticket's resolution or a FAQ answer is the answer itself: if the record a golden pair came
from were in the index, evaluation with retrieval would read the reference answer and measure
nothing. Pairs built from a document's own sections (section Q/A, summaries) are different:
the document is the knowledge the question is about, and finding it is what retrieval is for.
"""

from __future__ import annotations

import pandas as pd

from llm_assets.datasets.documents import DOCUMENT_PAIR_TASKS


def answered_golden_records(golden: pd.DataFrame) -> set[tuple[str, str]]:
    """(source, record_id) of every record whose own answer a golden pair holds."""
    answered = golden[~golden["task"].astype(str).isin(DOCUMENT_PAIR_TASKS)]
    return set(zip(answered["source"].astype(str), answered["record_id"].astype(str), strict=True))


def knowledge_records(
    corpus: pd.DataFrame, golden: pd.DataFrame, sources: list[str]
) -> pd.DataFrame:
    """The rows of `corpus` from `sources`, less the records golden pairs were answered from."""
    excluded = answered_golden_records(golden)
    keys = zip(corpus["source"].astype(str), corpus["record_id"].astype(str), strict=True)
    keep = [key not in excluded for key in keys]
    return corpus[corpus["source"].isin(sources) & pd.Series(keep, index=corpus.index)]


def golden_records_in_index(chunks: pd.DataFrame, golden: pd.DataFrame) -> list[str]:
    """The chunk ids of `chunks` cut from a record a golden pair was answered from."""
    excluded = answered_golden_records(golden)
    keys = zip(chunks["source"].astype(str), chunks["record_id"].astype(str), strict=True)
    return [
        str(chunk_id)
        for chunk_id, key in zip(chunks["chunk_id"], keys, strict=True)
        if key in excluded
    ]
