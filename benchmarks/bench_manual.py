"""A real HTML manual as a `documents` source through the real cleaning chain: pages kept, why
the others were dropped, and kept pages still carrying markup or navigation.

    apt-get install postgresql-doc-15    # PostgreSQL's manual, ~1,170 HTML pages
    .venv/bin/python benchmarks/bench_manual.py /usr/share/doc/postgresql-doc-15/html

Each page is read by the project's `documents` reader (Trafilatura) and cleaned by
`clean_corpus` with the default CleaningConfig twice: once with `documents_quality` at its
default (`preset: documentation`), once with the web-crawl preset for comparison. Prints a table
and writes benchmarks/results/bench_manual.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from llm_assets.cleaning.chain import clean_corpus
from llm_assets.settings import CleaningConfig, QualityThresholds, SourceConfig
from llm_assets.sources.documents import iter_documents
from llm_assets.sources.records import records_to_frame

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "manual"
# What a page must not carry once cleaned: HTML tags or entities, and navigation lines.
MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>\n]*)?/?>|&(?:[a-z]+|#\d+);")
NAVIGATION = re.compile(
    r"^\s*(?:(?:Prev|Next|Up|Home|Previous|Table of Contents|Search|Submit correction)"
    r"(?:\s*[|·]?\s*)){1,5}\s*$",
    re.M,
)
PLACEHOLDER = re.compile(r"<[A-Z_]+(?:_[0-9a-f]+)?>")


def read_manual(folder: Path, workers: int) -> pd.DataFrame:
    source = SourceConfig(name=SOURCE, kind="documents", path=str(folder / "**/*.html"))
    records = list(iter_documents(source, str(folder / "**/*.html"), workers=workers))
    return records_to_frame(records)


def leftovers(corpus: pd.DataFrame, folder: Path) -> dict[str, Any]:
    """Kept pages with markup or navigation lines, and an example of each.

    A tag that the page's HTML shows as text (`&lt;foo&gt;` in an XML example) is content, and
    so are the PII placeholders (`<PERSON>`); anything else tag-shaped is leftover markup."""
    markup_pages: list[str] = []
    examples: list[str] = []
    for text, uri in zip(corpus["text"], corpus["uri"], strict=True):
        html = (folder / uri).read_text(encoding="utf-8", errors="replace")
        found = [
            match.group()
            for match in MARKUP.finditer(text)
            if not PLACEHOLDER.fullmatch(match.group())
            and escape(match.group(), quote=False) not in html
        ]
        if found:
            markup_pages.append(uri)
            examples.append(found[0])
    navigation = corpus[corpus["text"].map(lambda text: bool(NAVIGATION.search(text)))]
    return {
        "pages_with_markup": len(markup_pages),
        "pages_with_navigation": len(navigation),
        "markup_examples": dict(zip(markup_pages[:10], examples[:10], strict=True)),
        "navigation_examples": navigation["uri"].head(10).tolist(),
    }


def clean(raw: pd.DataFrame, folder: Path, preset: str, workers: int) -> dict[str, Any]:
    config = CleaningConfig(documents_quality=QualityThresholds(preset=preset))  # type: ignore[arg-type]
    start = time.perf_counter()
    result = clean_corpus(raw, config, documents_sources={SOURCE}, workers=workers)
    seconds = time.perf_counter() - start
    ledger = result.ledger
    dropped = ledger[ledger["action"] != "kept"]
    return {
        "preset": preset,
        "pages": len(raw),
        "kept": len(result.corpus),
        "kept_share": round(len(result.corpus) / max(len(raw), 1), 4),
        "drop_reasons": dict(Counter(dropped["reason"].fillna("-")).most_common()),
        "dropped_examples": {
            reason: group["record_id"].head(5).tolist()
            for reason, group in dropped.groupby("reason")
        },
        **leftovers(result.corpus, folder),
        "pii_redactions": dict(result.pii_counts.most_common()),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="folder of the manual's .html pages")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bench_manual.json")
    parser.add_argument(
        "--raw-cache", type=Path, help="Parquet file of the pages as read: reused when present"
    )
    args = parser.parse_args()

    start = time.perf_counter()
    if args.raw_cache and args.raw_cache.exists():
        raw = pd.read_parquet(args.raw_cache)
    else:
        raw = read_manual(args.folder, args.workers)
        if args.raw_cache:
            raw.to_parquet(args.raw_cache)
    read_seconds = time.perf_counter() - start
    runs = [clean(raw, args.folder, preset, args.workers) for preset in ("documentation", "web")]

    print(f"{len(raw)} pages from {args.folder} (read in {read_seconds:.0f} s)\n")
    header = ["documents_quality", "kept", "share", "with markup", "with navigation", "s"]
    rows = [
        [
            run["preset"],
            run["kept"],
            f"{run['kept_share']:.3f}",
            run["pages_with_markup"],
            run["pages_with_navigation"],
            run["seconds"],
        ]
        for run in runs
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    for run in runs:
        print(f"\ndropped with preset {run['preset']}:")
        for reason, count in run["drop_reasons"].items():
            print(f"  {reason:32} {count}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": "benchmarks/bench_manual.py " + str(args.folder),
                "folder": str(args.folder),
                "pages": len(raw),
                "read_seconds": round(read_seconds, 1),
                "machine": {"python": platform.python_version(), "workers": args.workers},
                "runs": runs,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
