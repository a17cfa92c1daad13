"""ROUGE-1, ROUGE-2 and ROUGE-L F-measures (Google's `rouge_score`), for `evaluate.load()`.

Offline: `evaluate.load("llm_assets/evaluation/metrics/rouge")`. Returns the corpus score (the
mean over examples, as ROUGE is usually reported) and one score per example, which the paired
bootstrap resamples.
"""

import datasets
import evaluate

_DESCRIPTION = """ROUGE F-measures between each prediction and its reference: rouge1 (unigram
overlap), rouge2 (bigram overlap), rougeL (longest common subsequence). Text is lower-cased and
split on non-alphanumeric characters by rouge_score's tokenizer."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated answers.
    references: list of reference answers, one per prediction.
    use_stemmer: apply the Porter stemmer before matching (default False).
Returns:
    rouge1, rouge2, rougeL: mean F-measure over the examples, 0 to 1.
    rouge1_per_example, rouge2_per_example, rougeL_per_example: one F-measure per example.
"""

_CITATION = """@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew", booktitle = "Text Summarization Branches Out", year = "2004"}"""

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Rouge(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions, references, use_stemmer=False):
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
        per_example: dict[str, list[float]] = {name: [] for name in ROUGE_TYPES}
        for prediction, reference in zip(predictions, references, strict=True):
            scores = scorer.score(reference, prediction)  # (target, prediction)
            for name in ROUGE_TYPES:
                per_example[name].append(float(scores[name].fmeasure))
        result: dict[str, float | list[float]] = {}
        for name, values in per_example.items():
            result[name] = sum(values) / len(values) if values else 0.0
            result[f"{name}_per_example"] = values
        return result
