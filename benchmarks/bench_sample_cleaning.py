"""The default profile's sample through the cleaning chain: time, customer names left, allow list.

    .venv/bin/python benchmarks/bench_sample_cleaning.py            # conf/smollm2.yaml
    .venv/bin/python benchmarks/bench_sample_cleaning.py --profile conf/tiny.yaml

Reads every source of the profile, runs `clean_corpus` with 2 workers and the profile's
cleaning settings, and checks that no ticket's `customer_name` (from its provenance fields) is
left in the corpus and that redaction removes no "Aurora Sync" mention (an allow-listed
product): the same chain without redaction gives the count to compare with.
Prints a JSON summary and writes benchmarks/results/bench_sample_cleaning.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd

from llm_assets.cleaning.chain import clean_corpus
from llm_assets.settings import load_profile
from llm_assets.sources import read_source

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default=str(ROOT / "conf/smollm2.yaml"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/bench_sample_cleaning.json"
    )
    args = parser.parse_args()
    profile = load_profile(args.profile)
    raw = pd.concat([read_source(profile, source) for source in profile.sources])
    raw = raw.reset_index(drop=True)
    start = time.perf_counter()
    result = clean_corpus(
        raw,
        profile.cleaning,
        code_sources={s.name for s in profile.sources if s.kind == "git"},
        documents_sources={s.name for s in profile.sources if s.kind == "documents"},
        workers=args.workers,
    )
    seconds = time.perf_counter() - start
    names = {json.loads(fields).get("customer_name") for fields in raw["fields"].dropna()} - {None}
    corpus = "\n".join(
        result.corpus[column].fillna("").str.cat(sep="\n") for column in ("text", "response")
    )
    fields = result.corpus["fields"].fillna("").str.cat(sep="\n")
    # The same chain without redaction: noise removal also drops lines (an HTML page's header
    # naming the product), so the allow list is judged against this, not against the raw text.
    unredacted = clean_corpus(
        raw,
        profile.cleaning.model_copy(update={"redact_pii": False}),
        documents_sources={s.name for s in profile.sources if s.kind == "documents"},
        workers=args.workers,
    ).corpus
    raw_texts = "\n".join(
        unredacted[column].fillna("").str.cat(sep="\n") for column in ("text", "response")
    )
    summary = {
        "profile": args.profile,
        "raw_records": len(raw),
        "kept": len(result.corpus),
        "seconds": round(seconds, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "customer_names": len(names),
        "customer_names_left": sorted(name for name in names if name in corpus or name in fields),
        "aurora_sync_without_redaction": raw_texts.count("Aurora Sync"),
        "aurora_sync_with_redaction": corpus.count("Aurora Sync"),
        "pii_counts": dict(result.pii_counts.most_common()),
    }
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
