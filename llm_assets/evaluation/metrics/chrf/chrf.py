"""Corpus chrF (sacrebleu: character 6-grams, beta 2), for `evaluate.load()`.

Offline: `evaluate.load("llm_assets/evaluation/metrics/chrf")`. Like BLEU, chrF is computed from
n-gram counts summed over the corpus, so each example's sufficient statistics are returned too.
"""

import datasets
import evaluate

_DESCRIPTION = """chrF as computed by sacrebleu with its default settings (character n-grams up
to 6, no word n-grams, beta 2), on a 0-100 scale, one reference per example."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated answers.
    references: list of reference answers, one per prediction.
Returns:
    chrf: corpus chrF, 0 to 100.
    stats: per example, sacrebleu's match statistics (hypothesis, reference and matching
        n-gram counts per order); sum rows to rescore a subset.
    signature: sacrebleu's signature of the settings.
"""

_CITATION = """@inproceedings{popovic-2015-chrf,
    title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
    author = "Popovi{\\'c}, Maja", booktitle = "Proceedings of the Tenth Workshop on
    Statistical Machine Translation", year = "2015"}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Chrf(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions, references):
        from sacrebleu.metrics import CHRF

        chrf = CHRF()
        stats = chrf._extract_corpus_statistics(list(predictions), [list(references)])
        score = chrf._aggregate_and_compute(stats)
        return {
            "chrf": float(score.score),
            "stats": [[int(value) for value in row] for row in stats],
            "signature": str(chrf.get_signature()),
        }
