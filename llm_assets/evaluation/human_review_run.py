"""The `human_review_scores` step: the scores reviewers wrote into the review files of the
current export, validated and unblinded into mean scores per model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from llm_assets.contracts import HumanReviewScores
from llm_assets.evaluation.review import (
    REVIEW_CRITERIA,
    ReviewFileError,
    import_reviews,
    review_file_paths,
)
from llm_assets.stage_output import StageOutput


class MalformedReviewFile(ValueError):
    """A review file of the current export cannot be read. The message names the export and
    every bad file, row and column; `review_dir` is where the files are."""

    def __init__(self, export_id: str, review_dir: Path, problem: ReviewFileError) -> None:
        super().__init__(f"A review file of export {export_id} is malformed:\n{problem}")
        self.review_dir = review_dir


def run_human_review_scores(
    golden_predictions: pd.DataFrame, review_dir: Path
) -> StageOutput[HumanReviewScores]:
    """The scores in `review_dir` of the export `golden_predictions` wrote, unblinded with its
    key. Raises `MalformedReviewFile` when a file holds a bad cell."""
    export_id = str(golden_predictions["export_id"].iloc[0])
    keyed = golden_predictions.dropna(subset=["review_item"])
    key: dict[str, dict[str, str]] = {}
    pair_of_item: dict[str, str] = {}
    for row in keyed.itertuples():
        key.setdefault(str(row.review_item), {})[str(row.review_side)] = str(row.model)
        pair_of_item[str(row.review_item)] = str(row.pair_id)
    try:
        scores = import_reviews(review_dir, export_id, key)
    except ReviewFileError as error:
        raise MalformedReviewFile(export_id, review_dir, error) from error
    blank = review_file_paths(review_dir, export_id)
    how = (
        f"Open {blank['csv'].name} (or the .jsonl) in {review_dir}, score answer_a and "
        f"answer_b 1-5 in the columns {', '.join(f'{c}_a/_b' for c in REVIEW_CRITERIA)}, "
        "add a comment if useful, and save it there (in place, or as a copy whose name "
        "keeps the export id); then materialize human_review_scores again."
    )
    report: dict[str, object] = {
        "reviews": scores.reviews,
        "files": ", ".join(scores.files) or "none yet",
        "review_dir": review_dir,
        "export_id": export_id,
        "scores": scores.scores,
        "how_to_review": how,
    }
    answers = [
        {
            "reviewer": answer["reviewer"],
            "pair_id": pair_of_item[answer["item_id"]],
            "model": answer["model"],
            "scores": answer["scores"],
        }
        for answer in scores.answers
    ]
    value = HumanReviewScores.model_validate({**scores.as_dict(), "answers": answers})
    return StageOutput(value, report)
