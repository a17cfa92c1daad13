"""Serving: requests/s and p50/p95 latency of `llm-assets serve` on the tiny model under
concurrent load from a local client, against `model.generate` called directly in one process on
the same prompts with the same max_tokens: the server's overhead.

    .venv/bin/python benchmarks/bench_serving.py                  # about 2.5 minutes on 2 cores
    .venv/bin/python benchmarks/bench_serving.py --engine llama-cpp   # see bench_serving_llama_cpp
    .venv/bin/python benchmarks/bench_serving.py --adapter var/artifacts/qlora_adapter/<run> \\
        --requests 64 --clients 1 4 8 --max-tokens 32 --repeats 2

Adapter: `--adapter`, else the latest `qlora_adapter` materialized in the local instance
(var/assets/qlora_adapter.json), else one is built first with
`llm-assets materialize --select +qlora_adapter` (a few minutes on the default profile).

Prompts: the subject and body of the sample support tickets (data/sample/tickets), each sent
as one user message and rendered with the adapter's chat template. Decoding is greedy with the
profile's repetition penalty on both sides, so both produce the same tokens.

- `model.generate (direct)`: the adapter loaded as evaluation loads it, each prompt rendered,
  tokenized and generated in turn in this process: the work without any server.
- `server, C clients`: `llm-assets serve --adapter …` in its own process (auth on, exchanges
  stored in a temporary SQLite file, PII-redacted), C httpx clients sending the same requests
  at once (`stream: false`). The transformers engine generates one request at a time, so with
  more clients requests wait in turn: latency grows with C while requests/s stays.
- `server, streamed, 1 client`: the same with `stream: true`; its time to first token too.

Contenders are interleaved `--repeats` times (the cores are shared with other work); the table
shows medians. Overhead = direct requests/s ÷ server requests/s. Both sides run torch with
`--torch-threads` intra-op threads (default 1): the tiny model's matrices are too small for a
second thread to help, and on a shared machine two OpenMP threads waiting on each other at every
operation made the same generation swing between 0.2 and 1.3 s. Prints a table and writes
benchmarks/results/bench_serving.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import llm_assets  # noqa: F401  (keeps every library offline)
from llm_assets.settings import load_profile

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_serving.json"
TICKETS = ROOT / "data" / "sample" / "tickets"
ADAPTER_MANIFEST = ROOT / "var" / "assets" / "qlora_adapter.json"


def sample_prompts(count: int) -> list[str]:
    prompts = []
    for path in sorted(TICKETS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:  # the sample keeps a few broken rows on purpose, for the cleaning ledger
                row = json.loads(line)
                prompts.append(f"{row['subject']}\n\n{row['body']}"[:600])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return [prompts[index % len(prompts)] for index in range(count)]


def find_adapter(explicit: str | None) -> str:
    if explicit:
        return str(Path(explicit).resolve())
    if not ADAPTER_MANIFEST.is_file():
        print("No qlora_adapter materialized here yet: building one (llm-assets materialize).")
        subprocess.run(
            [sys.executable, "-m", "llm_assets.cli", "materialize", "--select", "+qlora_adapter"],
            cwd=ROOT,
            check=True,
        )
    return str(json.loads(ADAPTER_MANIFEST.read_text(encoding="utf-8"))["path"])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(latencies_s: list[float], wall_s: float, tokens: list[int]) -> dict[str, float]:
    return {
        "requests_per_s": len(latencies_s) / wall_s,
        "p50_ms": 1000 * statistics.median(latencies_s),
        "p95_ms": 1000 * percentile(latencies_s, 0.95),
        "completion_tokens_mean": statistics.mean(tokens),
        "tokens_per_s": sum(tokens) / wall_s,
    }


class DirectGenerate:
    """The adapter in this process: render, tokenize, `model.generate`, one prompt at a time."""

    def __init__(self, adapter: str, repetition_penalty: float) -> None:
        from llm_assets.datasets.chat_template import load_chat_tokenizer
        from llm_assets.evaluation.generation import load_model
        from llm_assets.serving.models import served_from_folder

        served = served_from_folder(adapter)
        self.model = load_model(served.model)
        self.tokenizer = load_chat_tokenizer(adapter)
        self.repetition_penalty = repetition_penalty

    def answer(self, prompt: str, max_tokens: int) -> int:
        import torch

        from llm_assets.datasets.chat_template import render_chat

        text = render_chat(self.tokenizer, [{"role": "user", "content": prompt}], True)
        ids = torch.tensor([self.tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            output = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_tokens,
                do_sample=False,
                repetition_penalty=self.repetition_penalty,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        produced = output[0, ids.shape[1] :].tolist()
        stop = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        return next((i for i, token in enumerate(produced) if token in stop), len(produced))

    def run(self, prompts: list[str], max_tokens: int) -> dict[str, float]:
        latencies, tokens = [], []
        started = time.perf_counter()
        for prompt in prompts:
            asked = time.perf_counter()
            tokens.append(self.answer(prompt, max_tokens))
            latencies.append(time.perf_counter() - asked)
        return summary(latencies, time.perf_counter() - started, tokens)


class Server:
    """`llm-assets serve --adapter …` in a child process on a free loopback port."""

    def __init__(self, adapter: str, folder: Path, torch_threads: int) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(16)
        self.log = folder / "server.log"
        env = {
            **os.environ,
            "LLM_ASSETS_SERVE_TOKEN": self.token,
            "LLM_ASSETS_FEEDBACK_DB_URL": f"sqlite:///{folder / 'feedback.db'}",
        }
        if torch_threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(torch_threads)
        command = [sys.executable, "-m", "llm_assets.cli", "serve", "--adapter", adapter]
        self.started = time.perf_counter()
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)], env=env, stdout=log, stderr=log, cwd=ROOT
            )

    def wait_ready(self, timeout_s: float = 180) -> float:
        import httpx

        while time.perf_counter() - self.started < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"the server did not start in {timeout_s} s; see {self.log}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def load_test(
    server: Server, prompts: list[str], clients: int, max_tokens: int, stream: bool
) -> dict[str, float]:
    """`clients` concurrent clients sending `prompts` (each taken once) to the server."""
    import httpx

    queue: asyncio.Queue[str] = asyncio.Queue()
    for prompt in prompts:
        queue.put_nowait(prompt)
    latencies: list[float] = []
    first_tokens: list[float] = []
    tokens: list[int] = []
    headers = {"Authorization": f"Bearer {server.token}"}

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            prompt = queue.get_nowait()
            body = {
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "stream": stream,
                "stream_options": {"include_usage": True},
            }
            asked = time.perf_counter()
            if stream:
                first = None
                async with http.stream(
                    "POST", "/v1/chat/completions", json=body, headers=headers
                ) as response:
                    response.raise_for_status()
                    async for line in response.aiter_lines():
                        if not line.startswith("data: {"):
                            continue
                        chunk = json.loads(line.removeprefix("data: "))
                        delta = chunk["choices"][0]["delta"] if chunk["choices"] else {}
                        if first is None and "content" in delta:
                            first = time.perf_counter() - asked
                        if chunk.get("usage"):
                            tokens.append(chunk["usage"]["completion_tokens"])
                first_tokens.append(first if first is not None else time.perf_counter() - asked)
            else:
                response = await http.post("/v1/chat/completions", json=body, headers=headers)
                response.raise_for_status()
                tokens.append(response.json()["usage"]["completion_tokens"])
            latencies.append(time.perf_counter() - asked)

    async with httpx.AsyncClient(base_url=server.url, timeout=300) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - started
    result = summary(latencies, wall, tokens)
    if stream:
        result["first_token_p50_ms"] = 1000 * statistics.median(first_tokens)
    return result


def main() -> None:
    if sys.argv[1:3] == ["--engine", "llama-cpp"]:
        # GGUF exports on llama.cpp: engine speeds, and the gateway against its engine.
        from bench_serving_llama_cpp import main as llama_cpp_main  # type: ignore[import-not-found]

        llama_cpp_main()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", default=None, help="adapter folder (default: the latest)")
    parser.add_argument("--requests", type=int, default=48, help="requests per contender")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="intra-op threads of torch on both sides (default 1, see above; 0: torch's default)",
    )
    args = parser.parse_args()
    load_start = os.getloadavg()
    adapter = find_adapter(args.adapter)
    profile = load_profile()
    penalty = profile.evaluation.generation.repetition_penalty
    prompts = sample_prompts(args.requests)
    runs: dict[str, list[dict[str, float]]] = {}

    def record(name: str, result: dict[str, float]) -> None:
        runs.setdefault(name, []).append(result)
        print(f"  {name}: {result['requests_per_s']:.2f} req/s, p50 {result['p50_ms']:.0f} ms")

    with tempfile.TemporaryDirectory() as folder:
        server = Server(adapter, Path(folder), args.torch_threads)
        try:
            direct = DirectGenerate(adapter, penalty)
            if args.torch_threads:
                import torch

                torch.set_num_threads(args.torch_threads)
            direct.run(prompts[:3], args.max_tokens)  # warm-up
            startup_s = server.wait_ready()
            asyncio.run(load_test(server, prompts[:3], 1, args.max_tokens, False))  # warm-up
            for repeat in range(args.repeats):
                print(f"repeat {repeat + 1}/{args.repeats}")
                record("model.generate (direct)", direct.run(prompts, args.max_tokens))
                for clients in args.clients:
                    name = f"server, {clients} client{'s' if clients > 1 else ''}"
                    loaded = load_test(server, prompts, clients, args.max_tokens, stream=False)
                    record(name, asyncio.run(loaded))
                record(
                    "server, streamed, 1 client",
                    asyncio.run(load_test(server, prompts, 1, args.max_tokens, True)),
                )
        finally:
            server.stop()
    baseline = statistics.median(r["requests_per_s"] for r in runs["model.generate (direct)"])
    rows = []
    for name, results in runs.items():
        row: dict[str, Any] = {"contender": name, "requests": args.requests}
        for key in results[0]:
            row[key] = statistics.median(result[key] for result in results)
        row["overhead_vs_direct"] = baseline / row["requests_per_s"]
        row["requests_per_s_runs"] = [result["requests_per_s"] for result in results]
        rows.append(row)
    results_json = {
        "command": "python benchmarks/bench_serving.py " + " ".join(sys.argv[1:]),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_start": load_start,
            "load_average_end": os.getloadavg(),
        },
        "versions": versions(),
        "adapter": adapter,
        "settings": {
            "max_tokens": args.max_tokens,
            "repeats": args.repeats,
            "clients": args.clients,
            "repetition_penalty": penalty,
            "decoding": "greedy",
            "torch_threads": args.torch_threads or "torch default",
        },
        "server_startup_s": startup_s,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results_json, indent=2) + "\n", encoding="utf-8")
    print_table(results_json)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "transformers", "peft", "fastapi", "uvicorn", "httpx"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def print_table(results: dict[str, Any]) -> None:
    settings = results["settings"]
    print(
        f"\n{results['rows'][0]['requests']} requests per contender, max_tokens "
        f"{settings['max_tokens']}, greedy; medians of {settings['repeats']} runs; load average "
        f"{results['machine']['load_average_start'][0]:.1f} on {results['machine']['cpus']} cores"
    )
    print(
        "| contender | req/s | p50 ms | p95 ms | tokens/req | tokens/s | overhead "
        "| first token p50 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in results["rows"]:
        first = row.get("first_token_p50_ms")
        print(
            f"| {row['contender']} | {row['requests_per_s']:.2f} | {row['p50_ms']:.0f} | "
            f"{row['p95_ms']:.0f} | {row['completion_tokens_mean']:.1f} | "
            f"{row['tokens_per_s']:.0f} | {row['overhead_vs_direct']:.2f}x | "
            f"{'' if first is None else f'{first:.0f} ms'} |"
        )
    print(f"server start-up (imports, model load): {results['server_startup_s']:.1f} s")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
