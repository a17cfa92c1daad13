"""PII redaction: recall per entity, words kept and throughput, against Presidio's defaults.

    .venv/bin/python benchmarks/bench_pii.py                     # 300 texts per entity + 300 clean
    .venv/bin/python benchmarks/bench_pii.py --per-entity 1000 --seed 1

Both contenders run on the same labelled set (llm_assets/cleaning/pii_eval.py, built with Faker
in en_US, en_GB and de_DE) in the same process:

- `llm_assets`: `redact_pii_batch`, Presidio with the project's recognizers and checks, and the
  offline name and street-address detectors of `pii_names`;
- `presidio-defaults`: Presidio's AnalyzerEngine with its default recognizer registry and default
  score threshold, on the same blank spaCy pipeline (no NER model can be downloaded, so its
  spaCy PERSON/LOCATION recognizer finds nothing), then its AnonymizerEngine.

Prints a table and writes benchmarks/results/bench_pii.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llm_assets.cleaning.pii import PII_ENTITIES, blank_nlp_engine, find_pii, redact_pii_batch
from llm_assets.cleaning.pii_eval import EVAL_ENTITIES, LabelledText, build_eval_set, score_spans

ROOT = Path(__file__).resolve().parents[1]
# Presidio's entity names for ours; LOCATION is the nearest it has to a street address.
PRESIDIO_NAMES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "PERSON": "PERSON",
    "LOCATION": "ADDRESS",
}

Spans = list[tuple[int, int, str]]


def presidio_defaults() -> tuple[Callable[[str], Spans], Callable[[str], str]]:
    """find and redact functions for Presidio's out-of-the-box recognizers."""
    import tldextract
    import tldextract.tldextract
    from presidio_analyzer import AnalyzerEngine
    from presidio_anonymizer import AnonymizerEngine

    # Its email check calls tldextract, which would try to download the public suffix list.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    analyzer = AnalyzerEngine(nlp_engine=blank_nlp_engine(), supported_languages=["en"])
    anonymizer = AnonymizerEngine()
    wanted = list(PRESIDIO_NAMES)

    def find(text: str) -> Spans:
        results = analyzer.analyze(text=text, language="en", entities=wanted)
        return [(r.start, r.end, PRESIDIO_NAMES[r.entity_type]) for r in results]

    def redact(text: str) -> str:
        results = analyzer.analyze(text=text, language="en", entities=wanted)
        return str(anonymizer.anonymize(text, results).text)

    return find, redact


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def evaluate(
    name: str,
    examples: Sequence[LabelledText],
    find: Callable[[str], Spans],
    redact_all: Callable[[list[str]], Any],
) -> dict[str, Any]:
    texts = [example.text for example in examples]
    score = score_spans(examples, [find(text) for text in texts])
    _, seconds = timed(lambda: redact_all(texts))
    return {
        "name": name,
        **score.as_dict(),
        "texts_per_s": round(len(texts) / seconds, 1),
        "missed_examples": score.missed[:40],
        "over_redacted_examples": score.over_redacted[:20],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-entity", type=int, default=300)
    parser.add_argument("--no-pii", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bench_pii.json")
    args = parser.parse_args()

    examples = build_eval_set(per_entity=args.per_entity, no_pii=args.no_pii, seed=args.seed)
    _, startup = timed(lambda: find_pii("warm up jane@example.com", PII_ENTITIES))
    ours = evaluate(
        "llm_assets",
        examples,
        lambda text: find_pii(text, PII_ENTITIES),
        lambda texts: redact_pii_batch(texts, PII_ENTITIES),
    )
    ours["startup_s"] = round(startup, 2)
    _, pseudo_seconds = timed(
        lambda: redact_pii_batch([e.text for e in examples], PII_ENTITIES, pseudonymize=True)
    )
    ours["pseudonymize_texts_per_s"] = round(len(examples) / pseudo_seconds, 1)
    (peer_find, peer_redact), peer_startup = timed(presidio_defaults)
    peer = evaluate(
        "presidio-defaults",
        examples,
        peer_find,
        lambda texts: [peer_redact(text) for text in texts],
    )
    peer["startup_s"] = round(peer_startup, 2)

    header = ["", *EVAL_ENTITIES, "words kept", "texts/s"]
    rows = [
        [
            run["name"],
            *(f"{run['recall'][entity]:.3f}" for entity in EVAL_ENTITIES),
            f"{run['words_kept']:.4f}",
            f"{run['texts_per_s']:.0f}",
        ]
        for run in (ours, peer)
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        f"\n{len(examples)} texts ({args.per_entity} per entity, {args.no_pii} without PII), "
        f"seed {args.seed}; llm_assets pseudonymized: {ours['pseudonymize_texts_per_s']:.0f} "
        f"texts/s; start-up {ours['startup_s']} s (ours), {peer['startup_s']} s (peer)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "texts": len(examples),
                "per_entity": args.per_entity,
                "no_pii": args.no_pii,
                "seed": args.seed,
                "machine": {"python": platform.python_version(), "cpu": platform.processor()},
                "runs": [ours, peer],
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
