"""Corpus BLEU (sacrebleu, 13a tokenization, exponential smoothing), for `evaluate.load()`.

Offline: `evaluate.load("llm_assets/evaluation/metrics/bleu")`. BLEU is a corpus statistic, not a
mean of sentence scores, so besides the score this returns each example's sufficient statistics
(hypothesis length, reference length, matching and total n-grams of order 1-4): summed over any
resample of the examples they give that resample's corpus BLEU.
"""

import datasets
import evaluate

_DESCRIPTION = """BLEU as computed by sacrebleu with its default settings (signature
nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp), on a 0-100 scale, one reference per example."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated answers.
    references: list of reference answers, one per prediction.
Returns:
    bleu: corpus BLEU, 0 to 100.
    precisions: the four n-gram precisions, in percent.
    brevity_penalty, sys_len, ref_len: as sacrebleu reports them.
    stats: per example [sys_len, ref_len, correct_1..4, total_1..4]; sum rows to rescore.
    signature: sacrebleu's signature of the settings.
"""

_CITATION = """@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores", author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation", year = "2018"}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Bleu(evaluate.Metric):
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
        from sacrebleu.metrics import BLEU

        bleu = BLEU()
        # sacrebleu's own per-segment statistics, the ones its paired bootstrap resamples.
        stats = bleu._extract_corpus_statistics(list(predictions), [list(references)])
        score = bleu._aggregate_and_compute(stats)
        return {
            "bleu": float(score.score),
            "precisions": [float(p) for p in score.precisions],
            "brevity_penalty": float(score.bp),
            "sys_len": int(score.sys_len),
            "ref_len": int(score.ref_len),
            "stats": [[int(value) for value in row] for row in stats],
            "signature": str(bleu.get_signature()),
        }
