"""Training throughput: the project's training step against plain transformers + peft defaults,
on the same model, data and batch.

    .venv/bin/python benchmarks/bench_training.py                      # CPU: about 2 minutes
    .venv/bin/python benchmarks/bench_training.py --shape llama3-8b    # GPU: the 8B shape

Contenders, each in a process of its own (so peak memory is its own):
- `llm_assets <method>`: `build_sft_trainer` from llm_assets/training/sft.py, the step
  `qlora_adapter` runs: trl SFTTrainer over the profile's `TrainingConfig` mapped by
  `sft_config_from`, `peft_config_from` and `quantization_config_from` (QLoRA: NF4 base with
  double quantization; bf16 on GPU; the profile's gradient checkpointing and packing).
- `plain transformers+peft`: `AutoModelForCausalLM.from_pretrained(path)`, `get_peft_model(model,
  LoraConfig(task_type="CAUSAL_LM"))` (peft's defaults: r=8 on q_proj and v_proj), a plain
  `transformers.Trainer` with default `TrainingArguments` and `DataCollatorForLanguageModeling`;
  the same micro-batch where it fits in memory, else halved with accumulation doubled.

On CPU (no CUDA): the tiny Llama of conf/tiny.yaml (random weights: throughput and memory do
not depend on their values) on the sample tickets as single-turn chats, conf/tiny.yaml's
training section: QLoRA, the same with LoRA, and LoRA with peft's default targets (r=8 on
q_proj/v_proj, no dropout), so that only the training step differs from the plain contender. MFU
is measured against this machine's best fp32 matmul rate (torch.matmul, 2048x2048), not a
datasheet figure.

On CUDA: a 7B/8B architecture (`--shape`: mistral-7b, llama2-7b, llama3-8b) built with random
weights and saved once in bf16 (nothing is downloaded), rows of about `--seq-len` (2048) tokens
(multi-turn chats of sample tickets), conf/gpu-7b.yaml's training section. MFU is against the GPU
model's dense bf16 peak read from nvidia-smi (H100 SXM: 989 TFLOP/s).

Tokens/s counts non-padding input tokens per second of wall clock (data loading included) after
the warm-up steps, best window of 5 steps (the median window is in the JSON too). On CPU the
cores may be shared with other work, which stretches wall time by whatever the others take, so
the comparison and MFU there use tokens per CPU-second of the training process (all its threads)
against the matmul's FLOP per CPU-second. Model FLOPs per token: 4*N for LoRA/QLoRA
(forward, and the backward pass to activations only; frozen weights get no gradient), 6*N for
full fine-tuning, N the weights of the linear layers (lm_head included; embeddings and attention
scores left out). Prints a table and writes benchmarks/results/bench_training.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import llm_assets  # noqa: F401  (keeps every library offline)
from llm_assets.settings import TrainingConfig, load_profile
from llm_assets.training.sft import peak_memory_mib

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_training.json"
TICKETS = ROOT / "data" / "sample" / "tickets" / "tickets.jsonl"
SHAPES: dict[str, dict[str, int]] = {
    "llama2-7b": dict(
        hidden=4096, intermediate=11008, layers=32, heads=32, kv_heads=32, vocab=32000
    ),
    "mistral-7b": dict(
        hidden=4096, intermediate=14336, layers=32, heads=32, kv_heads=8, vocab=32000
    ),
    "llama3-8b": dict(
        hidden=4096, intermediate=14336, layers=32, heads=32, kv_heads=8, vocab=128256
    ),
}
# The cores may be shared with other work: the best window of this many steps is reported.
WINDOW_STEPS = 5
# Dense bf16 tensor-core peaks (no sparsity), by a name fragment nvidia-smi reports; first match.
GPU_PEAK_BF16 = [
    ("H200", 989e12),
    ("H100 NVL", 835e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM: "NVIDIA H100 80GB HBM3"
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10G", 70e12),
]


# ---------------------------------------------------------------------------- data and models


def sample_pairs() -> list[tuple[str, str]]:
    """(question, answer) from the sample tickets: subject and body, then the resolution."""
    pairs = []
    for line in TICKETS.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the sample plants malformed lines for the cleaning stage
        if isinstance(row, dict) and row.get("body") and row.get("resolution"):
            pairs.append((f"{row.get('subject', '')}\n\n{row['body']}", str(row["resolution"])))
    return pairs


def long_conversations(pairs: list[tuple[str, str]], tokenizer: Any, target: int) -> list[Any]:
    """Multi-turn chats of consecutive tickets, each just under `target` tokens rendered."""
    from llm_assets.datasets.chat_template import to_messages

    rows: list[Any] = []
    current: list[dict[str, str]] = []
    for question, answer in pairs * 8:
        turn = to_messages(question, answer)
        length = len(
            tokenizer.apply_chat_template(current + turn, tokenize=True, return_dict=False)
        )
        if length > target and current:
            rows.append(current)
            current = []
        current = current + turn
    return rows


def prepare(folder: Path, gpu: bool, shape: str, seq_len: int) -> dict[str, Any]:
    """The base model folder and the dataset both contenders train on."""
    import torch
    from datasets import Dataset

    from llm_assets.datasets.chat_template import to_messages
    from llm_assets.training.base_model import build_tiny_base_model, train_tokenizer
    from llm_assets.training.sft import drop_rows_over_length

    pairs = sample_pairs()
    texts = [f"{q}\n\n{a}" for q, a in pairs]
    base = folder / "base"
    if gpu:
        from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig

        tokenizer = train_tokenizer(texts, 2048)  # ids fit any vocabulary; content is irrelevant
        dims = SHAPES[shape]
        config_class = MistralConfig if shape.startswith("mistral") else LlamaConfig
        config = config_class(
            vocab_size=dims["vocab"],
            hidden_size=dims["hidden"],
            intermediate_size=dims["intermediate"],
            num_hidden_layers=dims["layers"],
            num_attention_heads=dims["heads"],
            num_key_value_heads=dims["kv_heads"],
            max_position_embeddings=max(4096, seq_len),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        )
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        model.save_pretrained(base)
        tokenizer.save_pretrained(base)
        del model
        torch.cuda.empty_cache()
        rows = long_conversations(pairs, tokenizer, seq_len)
        max_length, model_name = seq_len, f"{shape} architecture, random weights (bf16 on disk)"
    else:
        tiny = load_profile(ROOT / "conf" / "tiny.yaml").model.tiny
        build_tiny_base_model(texts, tiny.model_copy(update={"pretrain_steps": 0}), base, seed=0)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base)
        rows = [to_messages(q, a) for q, a in pairs]
        max_length = load_profile(ROOT / "conf" / "tiny.yaml").datasets.max_length
        model_name = (
            f"tiny Llama of conf/tiny.yaml (hidden {tiny.hidden_size}, "
            f"{tiny.num_hidden_layers} layers, vocab {tiny.vocab_size}), random weights"
        )
    dataset, dropped = drop_rows_over_length(
        Dataset.from_list([{"messages": m} for m in rows]), tokenizer, max_length
    )
    dataset.save_to_disk(str(folder / "data"))
    lengths = [
        len(tokenizer.apply_chat_template(m, tokenize=True, return_dict=False))
        for m in dataset["messages"]
    ]
    return {
        "base": str(base),
        "data": str(folder / "data"),
        "max_length": max_length,
        "model": model_name,
        "rows": len(dataset),
        "rows_dropped_too_long": dropped,
        "mean_row_tokens": round(sum(lengths) / len(lengths), 1),
        "linear_parameters": linear_parameters(base),
    }


def linear_parameters(model_dir: Path) -> int:
    """Weights of the model's linear layers (lm_head included), counted on the meta device."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def peak_flops(gpu: bool) -> tuple[float | None, str]:
    """(FLOP/s, where the figure comes from) of the device the contenders run on."""
    if gpu:
        name = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.splitlines()
        gpu_name = name[0].strip() if name else "unknown GPU"
        for fragment, flops in GPU_PEAK_BF16:
            if fragment in gpu_name:
                return flops, f"{gpu_name}: {flops / 1e12:.0f} TFLOP/s bf16 dense (datasheet)"
        return None, f"{gpu_name}: no datasheet peak known here, MFU n/a"
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.matmul(a, b)
    best = min(_cpu_seconds(lambda: torch.matmul(a, b)) for _ in range(8))
    flops = 2 * 2048**3 / best
    return flops, (
        f"measured fp32 matmul peak, {flops / 1e9:.1f} GFLOP per CPU-second "
        f"({torch.get_num_threads()} threads)"
    )


def _cpu_seconds(work: Any) -> float:
    """CPU time of this process (every thread) spent in `work`: unlike wall time, it does not
    grow when other processes take turns on the cores."""
    started = time.process_time()
    work()
    return time.process_time() - started


# ---------------------------------------------------------------------------- one contender


# Our contenders: the profile's training section, with these settings changed.
OURS: dict[str, dict[str, Any]] = {
    "llm_assets qlora": {"method": "qlora"},
    "llm_assets lora": {"method": "lora"},
    # peft's own LoRA defaults for Llama, so only the training step differs from plain.
    "llm_assets lora, q/v r=8": {
        "method": "lora",
        "lora_r": 8,
        "target_modules": ["q_proj", "v_proj"],
        "lora_dropout": 0.0,
    },
}
PLAIN = "plain transformers+peft"


def training_config(gpu: bool, changes: dict[str, Any] | None = None) -> TrainingConfig:
    profile = "gpu-7b.yaml" if gpu else "tiny.yaml"
    return load_profile(ROOT / "conf" / profile).training.model_copy(update=changes or {})


def timing_callback(warmup: int) -> Any:
    import torch
    from transformers import TrainerCallback

    class Timing(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.marks: list[tuple[int, float, float, int]] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if state.global_step >= warmup:
                self.marks.append(
                    (
                        state.global_step,
                        time.perf_counter(),
                        time.process_time(),
                        state.num_input_tokens_seen,
                    )
                )

    return Timing()


def run_contender(name: str, prepared: dict[str, Any], steps: int, warmup: int) -> dict[str, Any]:
    import torch
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    gpu = torch.cuda.is_available()
    data = load_from_disk(prepared["data"])
    tokenizer = AutoTokenizer.from_pretrained(prepared["base"])
    timing = timing_callback(warmup)
    output = tempfile.mkdtemp(prefix="bench_training_")
    common = {
        "max_steps": warmup + steps,
        "save_strategy": "no",
        "eval_strategy": "no",
        "logging_steps": 10_000,
        "include_num_input_tokens_seen": "non_padding",
        "report_to": "none",
        "disable_tqdm": True,
    }
    if name in OURS:
        from llm_assets.training.sft import build_sft_trainer, sft_config_from

        config = training_config(gpu, OURS[name])
        args = sft_config_from(config, Path(output), prepared["max_length"], overrides=common)
        trainer = build_sft_trainer(
            prepared["base"], tokenizer, config, args, data, callbacks=[timing]
        )
        micro_batch, accumulation = (
            config.per_device_train_batch_size,
            args.gradient_accumulation_steps,
        )
        method, flops_factor = config.method, 6 if config.method == "full" else 4
        settings = (
            f"{config.method}, r={config.lora_r} on {config.target_modules}, dropout "
            f"{config.lora_dropout}, bf16={args.bf16}, gradient checkpointing="
            f"{config.gradient_checkpointing}, packing={config.packing}"
        )
        trainer.train()
    else:
        config = training_config(gpu)
        micro_batch = config.per_device_train_batch_size
        accumulation = config.gradient_accumulation_steps
        while True:
            try:
                plain_trainer(
                    prepared, tokenizer, data, output, micro_batch, accumulation, common, timing
                ).train()
                break
            except torch.cuda.OutOfMemoryError:
                if micro_batch == 1:
                    raise
            # Out of memory: the same tokens per optimizer step in smaller micro-batches.
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            micro_batch, accumulation = micro_batch // 2, accumulation * 2
            timing.marks.clear()
        method, flops_factor = "lora", 4
        settings = "peft LoraConfig defaults (r=8 on q_proj/v_proj, no dropout), Trainer defaults"
    wall = window_speeds(timing.marks, WINDOW_STEPS, clock=1)
    cpu = window_speeds(timing.marks, WINDOW_STEPS, clock=2)
    peak_mib = peak_memory_mib()
    return {
        "contender": name,
        "method": method,
        "settings": settings,
        "micro_batch": micro_batch,
        "gradient_accumulation": accumulation,
        "measured_steps": timing.marks[-1][0] - timing.marks[0][0],
        "tokens_per_second": max(wall),
        "tokens_per_second_median_window": statistics.median(wall),
        "tokens_per_cpu_second": statistics.median(cpu),
        "peak_memory_mib": round(peak_mib, 1),
        "peak_memory_kind": "torch.cuda.max_memory_allocated" if gpu else "process peak RSS",
        "flops_per_token": flops_factor * prepared["linear_parameters"],
    }


def window_speeds(
    marks: list[tuple[int, float, float, int]], window: int, clock: int
) -> list[float]:
    """Tokens per second over consecutive windows of `window` steps; marks are (step, wall time,
    CPU time, tokens seen) and `clock` the index of the time to use."""
    speeds = []
    for start in range(0, len(marks) - window, window):
        first, last = marks[start], marks[start + window]
        speeds.append((last[3] - first[3]) / (last[clock] - first[clock]))
    return speeds


def plain_trainer(
    prepared: dict[str, Any],
    tokenizer: Any,
    data: Any,
    output: str,
    micro_batch: int,
    accumulation: int,
    common: dict[str, Any],
    timing: Any,
) -> Any:
    """What a short tutorial does: library defaults everywhere, the whole chat as the target."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(prepared["base"]), LoraConfig(task_type="CAUSAL_LM")
    )
    tokenized = data.map(
        lambda row: tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True),
        remove_columns=data.column_names,
    )
    arguments = TrainingArguments(
        output_dir=output,
        per_device_train_batch_size=micro_batch,
        gradient_accumulation_steps=accumulation,
        use_cpu=not torch.cuda.is_available(),
        **common,
    )
    return Trainer(
        model=model,
        args=arguments,
        train_dataset=tokenized,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=[timing],
    )


# ---------------------------------------------------------------------------- the comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="mistral-7b", help="GPU only")
    parser.add_argument("--seq-len", type=int, default=2048, help="GPU row length, tokens")
    parser.add_argument("--steps", type=int, default=None, help="measured steps (CPU 30, GPU 10)")
    parser.add_argument("--warmup", type=int, default=None, help="steps not measured (3, GPU 2)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--prepared", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        prepared = json.loads(Path(args.prepared).read_text())
        result = run_contender(args.worker, prepared, args.steps, args.warmup)
        print("RESULT " + json.dumps(result))
        return

    import torch

    gpu = torch.cuda.is_available()
    steps = args.steps or (10 if gpu else 30)
    warmup = args.warmup or (2 if gpu else 3)
    contenders = (
        ["llm_assets qlora", PLAIN]
        if gpu
        else ["llm_assets qlora", "llm_assets lora", "llm_assets lora, q/v r=8", PLAIN]
    )
    with tempfile.TemporaryDirectory(prefix="bench_training_") as folder:
        prepared = prepare(Path(folder), gpu, args.shape, args.seq_len)
        prepared_path = Path(folder) / "prepared.json"
        prepared_path.write_text(json.dumps(prepared))
        flops, peak_source = peak_flops(gpu)
        results = []
        for name in contenders:
            command = [sys.executable, __file__, "--worker", name, "--prepared", str(prepared_path)]
            command += ["--steps", str(steps), "--warmup", str(warmup)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed:\n{done.stderr[-4000:]}")
            results.append(json.loads(done.stdout.rsplit("RESULT ", 1)[1].splitlines()[0]))
    # On a CPU shared with other work, CPU time is the steadier clock.
    speed = "tokens_per_second" if gpu else "tokens_per_cpu_second"
    for row in results:
        row["mfu"] = row["flops_per_token"] * row[speed] / flops if flops else None
        row["speed_vs_plain"] = row[speed] / results[-1][speed]
    report = {
        "device": torch.cuda.get_device_name(0)
        if gpu
        else f"CPU ({platform.processor() or 'x86_64'}, {torch.get_num_threads()} threads)",
        "model": prepared["model"],
        "data": {k: prepared[k] for k in ("rows", "mean_row_tokens", "max_length")},
        "linear_parameters": prepared["linear_parameters"],
        "peak_flops": flops,
        "peak_flops_source": peak_source,
        "warmup_steps": warmup,
        "measured_steps": steps,
        "speed_compared": speed,
        "command": " ".join(["python", "benchmarks/bench_training.py", *sys.argv[1:]]),
        "results": results,
    }
    print_table(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


def print_table(report: dict[str, Any]) -> None:
    print(f"device: {report['device']}")
    print(f"model: {report['model']}; {report['linear_parameters']:,} linear weights")
    data = report["data"]
    print(f"data: {data['rows']} rows, mean {data['mean_row_tokens']} tokens, ", end="")
    print(f"max {data['max_length']}")
    print(f"MFU against: {report['peak_flops_source']}\n")
    cpu = report["speed_compared"] == "tokens_per_cpu_second"
    columns = [("batch", 6), ("tokens/s", 9), ("tok/CPU-s", 10), ("vs plain", 9)]
    columns += [("peak MiB", 9), ("MFU", 7)]
    header = f"{'contender':<26}" + "".join(f" {name:>{width}}" for name, width in columns)
    print(header)
    print("-" * len(header))
    for row in report["results"]:
        mfu = f"{100 * row['mfu']:.2f}%" if row["mfu"] is not None else "n/a"
        batch = f"{row['micro_batch']}x{row['gradient_accumulation']}"
        per_cpu = f"{row['tokens_per_cpu_second']:,.0f}" if cpu else "-"
        print(
            f"{row['contender']:<26} {batch:>6} {row['tokens_per_second']:>9,.0f} "
            f"{per_cpu:>10} {row['speed_vs_plain']:>8.2f}x {row['peak_memory_mib']:>9,.0f} "
            f"{mfu:>7}"
        )
    if cpu:
        print("(vs plain and MFU per CPU-second: the cores are shared with other work)")
    for row in report["results"]:
        print(f"  {row['contender']}: {row['settings']}")


if __name__ == "__main__":
    main()
