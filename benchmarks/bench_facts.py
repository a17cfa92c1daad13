"""Held-out factual questions asked of the served model, through the real server.

    .venv/bin/python benchmarks/bench_facts.py                      # the champion, default profile
    .venv/bin/python benchmarks/bench_facts.py --model-version challenger \\
        --state /tmp/run/var --output benchmarks/results/bench_facts.json

Starts `llm-assets serve --model-version <v>` in its own process on a free loopback port (the
served model's own retrieval setting decides whether answers are grounded, as in production),
sends every question of `evaluation.facts_file` as one user message (greedy, `stream: false`),
and counts the answers that state the fact, and those whose returned `rag_chunk_ids` include a
chunk of the document the fact comes from. The questions were written by hand from the docs and
are never trained on (`sft_dataset_excludes_fact_questions`). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(profile: Path, version: str, env: dict[str, str], log: Path) -> tuple[Any, str]:
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "llm_assets.cli", "serve", "--profile", str(profile)]
    command += ["--model-version", version, "--no-auth", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    while time.perf_counter() - started < 300:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    raise TimeoutError(f"the server did not start in 300 s; see {log}")


def main() -> None:
    import httpx

    from llm_assets.evaluation.facts import facts_stated, read_fact_questions
    from llm_assets.settings import load_profile

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "smollm2.yaml")
    parser.add_argument("--model-version", default="champion")
    parser.add_argument("--state", type=Path, default=None, help="state folder (default: var/)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/bench_facts.json")
    args = parser.parse_args()

    profile = load_profile(args.profile)
    path = profile.facts_path()
    if path is None:
        raise SystemExit(f"{args.profile}: no evaluation.facts_file")
    questions = read_fact_questions(path)
    env = dict(os.environ)
    folder = Path(tempfile.mkdtemp(prefix="bench_facts-"))
    env["LLM_ASSETS_FEEDBACK_DB_URL"] = f"sqlite:///{folder / 'feedback.db'}"
    if args.state:
        env["LLM_ASSETS_STATE_DIR"] = str(args.state.resolve())
        env.pop("MLFLOW_TRACKING_URI", None)
    process, url = serve(args.profile.resolve(), args.model_version, env, folder / "server.log")
    rows = []
    try:
        for row in questions.itertuples():
            started = time.perf_counter()
            reply = httpx.post(
                f"{url}/v1/chat/completions",
                json={"messages": [{"role": "user", "content": row.instruction}]},
                timeout=300,
            ).json()
            answer = reply["choices"][0]["message"]["content"]
            chunk_ids = list(reply.get("rag_chunk_ids") or [])
            doc = Path(str(row.doc)).stem
            rows.append(
                {
                    "id": row.pair_id,
                    "question": row.instruction,
                    "facts": list(row.facts),
                    "answer": answer,
                    "stated": facts_stated(answer, list(row.facts)),
                    "rag_chunk_ids": chunk_ids,
                    "doc_retrieved": any(doc in chunk_id for chunk_id in chunk_ids),
                    "seconds": round(time.perf_counter() - started, 2),
                }
            )
    finally:
        process.terminate()
        process.wait(timeout=30)
    stated = sum(r["stated"] for r in rows)
    retrieved = sum(r["doc_retrieved"] for r in rows)
    with_ids = sum(r["stated"] and r["doc_retrieved"] for r in rows)
    print(f"\nmodel version: {args.model_version}   questions: {len(rows)}\n")
    print(f"{'id':9} {'stated':7} {'doc chunk':10} question")
    for r in rows:
        print(
            f"{r['id']:9} {'yes' if r['stated'] else 'no':7} "
            f"{'yes' if r['doc_retrieved'] else 'no':10} {r['question'][:70]}"
        )
    print(
        f"\nstates the fact: {stated}/{len(rows)} ({stated / len(rows):.0%}); its document "
        f"among the returned chunk ids: {retrieved}/{len(rows)}; both: {with_ids}"
    )
    summary = {
        "command": " ".join(["python", "benchmarks/bench_facts.py", *sys.argv[1:]]),
        "model_version": args.model_version,
        "questions": len(rows),
        "stated": stated,
        "stated_share": round(stated / len(rows), 4),
        "doc_retrieved": retrieved,
        "stated_with_doc_chunk": with_ids,
        "rows": rows,
    }
    from llm_assets.storage import atomic_file

    with atomic_file(args.output) as temporary:
        temporary.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
