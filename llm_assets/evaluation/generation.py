"""Loading the models under evaluation and letting them answer, the same way for every model.

Every model in an A/B comparison (the tuned adapter, its base, the current champion) answers the
same prompts rendered with the same tokenizer and chat template (the one saved with the adapter,
which is the one training used), under the same generation settings. Only the weights differ.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from llm_assets.contracts import Adapter
from llm_assets.datasets.chat_template import render_chat
from llm_assets.settings import GenerationConfig

if TYPE_CHECKING:
    from llm_assets.evaluation.decoding import Decoder
    from llm_assets.evaluation.perplexity import PerplexityResult

# Adapters whose weights fold into the base's (prompt methods add virtual tokens instead).
LORA_METHODS = ("qlora", "lora")


@dataclass(frozen=True)
class ModelUnderTest:
    """A model to evaluate: a base model folder, optionally with an adapter (or a full
    fine-tune) on top. `label` names it in reports: "tuned", "base", "champion"."""

    label: str
    base_model_path: str
    adapter_path: str | None = None
    method: str = "qlora"

    @classmethod
    def from_adapter_manifest(
        cls, label: str, manifest: Adapter | Mapping[str, Any]
    ) -> ModelUnderTest:
        """From the value of the `qlora_adapter` asset, or the manifest of a registered version
        (`find_champion`, the server's model)."""
        if isinstance(manifest, Adapter):
            manifest = manifest.model_dump()
        return cls(
            label=label,
            base_model_path=manifest["base_model_path"],
            adapter_path=manifest["path"],
            method=manifest.get("method", "qlora"),
        )


@dataclass
class Generations:
    """The answers of one model to a list of prompts, and how fast they came."""

    label: str
    answers: list[str]
    new_tokens: list[int]
    seconds: float
    batch_latencies_ms: list[float] = field(default_factory=list)
    # The batch each answer was generated in (prompts are batched by length, not by order).
    batch_of_answer: list[int] = field(default_factory=list)
    # The same weights' perplexity per split of a `ReferenceScoring`, when one was asked for.
    perplexity: dict[str, PerplexityResult] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return sum(self.new_tokens) / self.seconds if self.seconds > 0 else 0.0


def load_model(model: ModelUnderTest) -> Any:
    """The model in fp32 on CPU (bf16 on GPU), in eval mode; adapters applied with peft, LoRA
    merged into the weights. A full fine-tune is a complete model in `adapter_path` and loads
    on its own."""
    import torch
    from transformers import AutoModelForCausalLM

    gpu = torch.cuda.is_available()
    options: dict[str, Any] = {
        "dtype": torch.bfloat16 if gpu else torch.float32,
        "device_map": {"": 0} if gpu else {"": "cpu"},
    }
    if model.adapter_path and model.method == "full":
        loaded = AutoModelForCausalLM.from_pretrained(model.adapter_path, **options)
    else:
        loaded = AutoModelForCausalLM.from_pretrained(model.base_model_path, **options)
        if model.adapter_path:
            from peft import PeftModel

            loaded = PeftModel.from_pretrained(loaded, model.adapter_path)
            if model.method in LORA_METHODS:
                # Folded into the fp32/bf16 weights: what merged_model and serving run, and an
                # unmerged adapter costs every layer an extra pair of matmuls per token.
                loaded = loaded.merge_and_unload()
    loaded.eval()
    return loaded


def answers_in_bf16(config: GenerationConfig) -> bool:
    """Whether a CPU answers with bf16 weights, as `config.cpu_bf16` says."""
    from llm_assets.training.sft import cpu_bf16_chosen

    return cpu_bf16_chosen(config.cpu_bf16)


def in_answering_precision(loaded: Any, config: GenerationConfig) -> Any:
    """`loaded` (a `load_model` result) cast to bf16 when `answers_in_bf16`. The cast comes
    after the LoRA merge, so the adapter is folded in at full precision. On 2 CPU cores with
    AMX answers come 1.7x as fast, stating the same facts (benchmarks/bench_eval_precision.py
    measures them both ways)."""
    import torch

    if not answers_in_bf16(config) or next(loaded.parameters()).dtype == torch.bfloat16:
        return loaded
    return loaded.to(torch.bfloat16)


def prompt_texts(tokenizer: Any, conversations: list[list[dict[str, str]]]) -> list[str]:
    """Each conversation without its final answer, rendered as a generation prompt."""
    return [render_chat(tokenizer, messages, for_generation=True) for messages in conversations]


def closed_book_texts(
    tokenizer: Any, conversations: Sequence[list[dict[str, str]] | None]
) -> list[str | None]:
    """`prompt_texts` of the closed-book twins of grounded prompts (`GroundedPrompts.closed_book`),
    None kept where a prompt has no context."""
    return [
        None if messages is None else render_chat(tokenizer, messages, for_generation=True)
        for messages in conversations
    ]


def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    config: GenerationConfig,
    label: str = "model",
    closed_book: Sequence[str | None] | None = None,
    decode: Decoder | None = None,
) -> Generations:
    """Answers to already-rendered `prompts`, in the order given. Prompts of similar length are
    batched together, with left padding (so every row's answer starts right after its prompt):
    a batch then computes little padding. Special tokens are stripped from the answers. With
    `closed_book` (each prompt without its retrieved context, None where it has none) and
    `config.context_contrast` > 0, answers with context are decoded context-aware. `decode`
    decodes each batch (default `decoding.decode_batch`)."""
    import torch

    from llm_assets.evaluation.context_aware import ClosedBookContrast, ContextContrast
    from llm_assets.evaluation.decoding import contiguous_head_input, decode_batch, left_padded

    device = next(model.parameters()).device
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    all_encoded = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in prompts]
    contrasted = _contrasted_ids(tokenizer, prompts, closed_book, config)
    by_length = sorted(range(len(prompts)), key=lambda index: len(all_encoded[index]))
    answers: list[str] = [""] * len(prompts)
    new_tokens: list[int] = [0] * len(prompts)
    batch_of_answer: list[int] = [0] * len(prompts)
    latencies: list[float] = []
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    for start in range(0, len(prompts), config.batch_size):
        rows = by_length[start : start + config.batch_size]
        input_ids, attention = left_padded([all_encoded[index] for index in rows], pad_id)
        width = input_ids.shape[1]
        processors = answer_repetition_penalty(config.repetition_penalty, width)
        if contrasted is not None:
            twins = [contrasted[index] for index in rows]
            contrast = ContextContrast(config.context_contrast)
            processors.insert(
                0, ClosedBookContrast(model, twins, pad_id, contrast, config.max_new_tokens)
            )
        batch_started = time.perf_counter()
        with torch.no_grad(), contiguous_head_input(model):
            produced_ids = (decode or decode_batch)(
                model,
                input_ids.to(device),
                attention.to(device),
                config,
                processors,
                tokenizer.eos_token_id,
                pad_id,
            )
        latencies.append(1000 * (time.perf_counter() - batch_started))
        for index, produced in zip(rows, produced_ids, strict=True):
            new_tokens[index] = len(produced)
            answers[index] = tokenizer.decode(produced, skip_special_tokens=True).strip()
            batch_of_answer[index] = len(latencies) - 1
    return Generations(
        label=label,
        answers=answers,
        new_tokens=new_tokens,
        seconds=time.perf_counter() - started,
        batch_latencies_ms=latencies,
        batch_of_answer=batch_of_answer,
    )


def _contrasted_ids(
    tokenizer: Any,
    prompts: list[str],
    closed_book: Sequence[str | None] | None,
    config: GenerationConfig,
) -> list[list[int] | None] | None:
    """The token ids of each prompt's closed-book twin when answers are decoded context-aware
    (None for a prompt without context); None when none is."""
    if config.context_contrast == 0 or closed_book is None or not any(closed_book):
        return None
    if len(closed_book) != len(prompts):
        raise ValueError(f"{len(closed_book)} closed-book prompts for {len(prompts)} prompts")
    return [
        None if text is None else tokenizer(text, add_special_tokens=False)["input_ids"]
        for text in closed_book
    ]


def answer_repetition_penalty(penalty: float, prompt_length: int) -> list[Any]:
    """transformers' repetition penalty over the answer's own tokens only. `generate`'s
    `repetition_penalty` also penalizes every prompt token, so a fact copied from the retrieved
    context or the question is made less likely: on SmolLM2 trained with retrieval that cost
    ROUGE-L 0.29 -> 0.22 and halved groundedness (docs/grounding.md). llama.cpp's sampler
    penalizes only accepted (generated) tokens, so this is also what the GGUF engine does.
    `prompt_length`: the padded width of the batch (prompts are left-padded)."""
    from transformers import RepetitionPenaltyLogitsProcessor

    if penalty == 1.0:
        return []
    return [RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=prompt_length)]


@dataclass(frozen=True)
class ReferenceScoring:
    """Conversations whose final answers a model's perplexity is measured on while it is
    loaded to answer (split name -> conversations), so evaluation loads each model once."""

    splits: Mapping[str, list[list[dict[str, str]]]]
    max_length: int
    batch_size: int = 16

    def score(self, loaded: Any, tokenizer: Any) -> dict[str, PerplexityResult]:
        from llm_assets.evaluation.perplexity import perplexity

        return {
            split: perplexity(loaded, tokenizer, conversations, self.max_length, self.batch_size)
            for split, conversations in self.splits.items()
        }


class Answerer(Protocol):
    """One model's weights answering sets of rendered prompts, loaded once for all of them:
    {label: prompts} -> {label: answers}. The sets are the same weights asked different ways
    (closed-book and with retrieved context). With `scoring`, each answer set also carries the
    model's perplexity on those conversations, measured on the same load. `closed_book` gives,
    for a set with retrieved context, each prompt without it (context-aware decoding)."""

    def __call__(
        self,
        model: ModelUnderTest,
        tokenizer: Any,
        prompt_sets: Mapping[str, list[str]],
        config: GenerationConfig,
        scoring: ReferenceScoring | None = None,
        closed_book: Mapping[str, Sequence[str | None]] | None = None,
    ) -> dict[str, Generations]: ...


def transformers_answers(
    model: ModelUnderTest,
    tokenizer: Any,
    prompt_sets: Mapping[str, list[str]],
    config: GenerationConfig,
    scoring: ReferenceScoring | None = None,
    closed_book: Mapping[str, Sequence[str | None]] | None = None,
) -> dict[str, Generations]:
    """`model` loaded with `load_model`, answering each set with `generate_answers` (and scored
    as `scoring` says), then released (evaluation.engine: transformers)."""
    import gc

    loaded = load_model(model)
    twins = closed_book or {}
    try:
        if config.cpu_bf16_perplexity:
            loaded = in_answering_precision(loaded, config)
        scores = scoring.score(loaded, tokenizer) if scoring else {}
        loaded = in_answering_precision(loaded, config)
        return {
            label: replace(
                generate_answers(loaded, tokenizer, prompts, config, label, twins.get(label)),
                perplexity=scores,
            )
            for label, prompts in prompt_sets.items()
        }
    finally:
        del loaded
        gc.collect()
