"""Exact match after normalization, for `evaluate.load()`.

Offline: `evaluate.load("llm_assets/evaluation/metrics/exact_match")`. Meant for tasks with one
right answer (a number, a plan name, a setting): case, punctuation, articles and spacing are not
held against a model, anything else is.
"""

import re
import string
import unicodedata

import datasets
import evaluate

_DESCRIPTION = """1 when the prediction equals the reference after both are normalized
(Unicode NFKC, lower case, punctuation removed, the articles a/an/the removed, runs of
whitespace collapsed), else 0; the corpus score is the mean."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated answers.
    references: list of reference answers, one per prediction.
Returns:
    exact_match: share of examples that match, 0 to 1.
    exact_match_per_example: 1 or 0 per example.
"""

_PUNCTUATION = str.maketrans("", "", string.punctuation + "“”‘’«»…–—")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text):
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ExactMatch(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        per_example = [
            int(normalize_answer(prediction) == normalize_answer(reference))
            for prediction, reference in zip(predictions, references, strict=True)
        ]
        return {
            "exact_match": sum(per_example) / len(per_example) if per_example else 0.0,
            "exact_match_per_example": per_example,
        }
