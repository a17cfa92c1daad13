"""Perplexity and generation batched by prompt length: the same numbers and answers, in the
same order, as one conversation at a time (perplexity also over the full logits)."""

import math
from typing import Any

import pytest

from llm_assets.datasets.chat_template import render_chat, to_messages
from llm_assets.evaluation.perplexity import pair_margins, perplexity
from llm_assets.settings import TinyModelConfig
from llm_assets.training.base_model import build_tiny_model, train_tokenizer


def tiny_model(seed: int) -> tuple[Any, Any]:
    """(tokenizer, model) of a small random Llama, in eval mode."""
    texts = ["Restart the Aurora client.", "Selective sync keeps folders in the cloud."] * 20
    tokenizer = train_tokenizer(texts, vocab_size=300)
    config = TinyModelConfig(hidden_size=32, intermediate_size=64)
    return tokenizer, build_tiny_model(tokenizer, config, seed).eval()


def test_batched_answer_perplexity_equals_the_plain_computation() -> None:
    import torch

    tokenizer, model = tiny_model(seed=3)
    conversations = [
        to_messages("How do I restart?", "Quit and reopen it.", system_prompt="Be brief."),
        to_messages("Sync?", "Selective sync keeps folders in the cloud only, " * 3),
        to_messages("A much longer question about folders and the cloud " * 4, "Yes."),
    ]
    expected_nll, expected_tokens = [], []
    for messages in conversations:
        prompt = tokenizer(render_chat(tokenizer, messages, True), add_special_tokens=False)
        full = tokenizer(render_chat(tokenizer, messages), add_special_tokens=False)["input_ids"]
        ids = torch.tensor([full])
        with torch.no_grad():
            log_probs = torch.log_softmax(model(input_ids=ids).logits[0, :-1], dim=-1)
        start = len(prompt["input_ids"])
        nll = -log_probs[torch.arange(start - 1, len(full) - 1), ids[0, start:]]
        expected_nll.append(float(nll.sum()))
        expected_tokens.append(len(full) - start)

    result = perplexity(model, tokenizer, conversations, max_length=512, batch_size=2)
    assert result.row_tokens == expected_tokens
    assert result.row_nll == pytest.approx(expected_nll, rel=1e-4)
    mean = sum(expected_nll) / sum(expected_tokens)
    assert result.perplexity == pytest.approx(math.exp(mean), rel=1e-4)


def test_pair_margins_are_the_answer_log_probability_differences() -> None:
    tokenizer, model = tiny_model(seed=3)
    prompt = [{"role": "user", "content": "How do I restart?"}]
    good = [{"role": "assistant", "content": "Quit and reopen it."}]
    bad = [{"role": "assistant", "content": "Selective sync keeps folders in the cloud."}]
    pairs = [
        {"prompt": prompt, "chosen": good, "rejected": bad},
        {"prompt": prompt, "chosen": bad, "rejected": good},
        {"prompt": prompt, "chosen": good, "rejected": good},
    ]
    nll = perplexity(model, tokenizer, [[*prompt, *good], [*prompt, *bad]], 512).row_nll
    margins = pair_margins(model, tokenizer, pairs, 512)
    assert margins[0] == pytest.approx(nll[1] - nll[0], rel=1e-4)
    assert margins[1] == pytest.approx(-margins[0], rel=1e-4)
    assert margins[2] == pytest.approx(0.0, abs=1e-4)


def test_answers_batched_by_length_come_back_in_prompt_order() -> None:
    from llm_assets.evaluation.generation import generate_answers
    from llm_assets.settings import GenerationConfig

    tokenizer, model = tiny_model(seed=5)
    prompts = [
        render_chat(tokenizer, [{"role": "user", "content": question}], for_generation=True)
        for question in ["Restart? " * 9, "Sync?", "Folders in the cloud? " * 5, "Aurora?"]
    ]
    config = GenerationConfig(max_new_tokens=6, batch_size=2, repetition_penalty=1.0)
    together = generate_answers(model, tokenizer, prompts, config)
    alone = [
        generate_answers(model, tokenizer, [prompt], config.model_copy(update={"batch_size": 1}))
        for prompt in prompts
    ]
    assert together.answers == [generation.answers[0] for generation in alone]
    assert len(set(together.answers)) > 1 and all(together.answers)
    # The two short prompts shared a batch, and so did the two long ones.
    assert together.batch_of_answer == [1, 0, 1, 0]
    assert len(together.batch_latencies_ms) == 2


def test_repetition_penalty_spares_the_prompt_and_penalizes_the_answer() -> None:
    """A token of the prompt (a fact in the retrieved context) keeps its score; a token the
    answer already produced is penalized; with 1.0 there is no processor at all."""
    import torch

    from llm_assets.evaluation.generation import answer_repetition_penalty

    assert answer_repetition_penalty(1.0, 3) == []
    (processor,) = answer_repetition_penalty(2.0, 3)
    sequence = torch.tensor([[5, 6, 7, 8]])  # prompt 5 6 7, answer so far 8
    scores = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 4.0, 4.0, -4.0, 4.0, 4.0]])
    penalized = processor(sequence, scores.clone())
    assert penalized[0, 5].item() == 4.0 and penalized[0, 7].item() == -4.0
    assert penalized[0, 8].item() == 2.0
    assert penalized[0, 9].item() == 4.0


def test_stored_perplexities_pair_models_by_golden_row_and_refuse_old_tables() -> None:
    """eval_report reads the perplexities golden_predictions measured: each model's golden rows
    in the order asked (so the paired bootstrap pairs the same conversations), validation whole."""
    import pandas as pd

    from llm_assets.evaluation.predictions import stored_perplexities

    def rows(model: str, pair_ids: list[str], nll: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "model": model,
                "pair_id": pair_ids,
                "golden_nll": nll,
                "golden_tokens": [2] * len(nll),
                "validation_nll": [[1.0, 3.0]] * len(nll),
                "validation_tokens": [[1, 3]] * len(nll),
            }
        )

    table = pd.concat(
        [rows("tuned", ["a", "b"], [2.0, 4.0]), rows("base", ["b", "a"], [8.0, 6.0])],
        ignore_index=True,
    )
    stored = stored_perplexities(table, ["a", "b"])
    assert stored["tuned"]["golden"].row_nll == [2.0, 4.0]
    assert stored["base"]["golden"].row_nll == [6.0, 8.0]
    assert stored["base"]["golden"].perplexity == pytest.approx(math.exp(14.0 / 4))
    assert stored["tuned"]["validation"].perplexity == pytest.approx(math.exp(4.0 / 4))
    with pytest.raises(ValueError, match="materialize golden_predictions again"):
        stored_perplexities(table.drop(columns=["validation_nll"]), ["a", "b"])


@pytest.mark.parametrize(
    ("setting", "native", "expected"),
    [("off", True, False), ("on", False, True), ("auto", True, True), ("auto", False, False)],
)
def test_answers_in_bf16_follow_the_setting_and_the_cpu(
    monkeypatch: pytest.MonkeyPatch, setting: str, native: bool, expected: bool
) -> None:
    from llm_assets.evaluation.generation import answers_in_bf16
    from llm_assets.settings import GenerationConfig

    monkeypatch.setattr("llm_assets.training.sft.cpu_multiplies_bf16", lambda: native)
    assert answers_in_bf16(GenerationConfig(cpu_bf16=setting)) is expected


def test_bf16_answers_come_after_fp32_perplexity_on_the_same_load(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Perplexity is scored on the fp32 load; only then are the weights cast to answer."""
    import torch

    from llm_assets.evaluation import generation
    from llm_assets.evaluation.generation import (
        ModelUnderTest,
        ReferenceScoring,
        generate_answers,
        transformers_answers,
    )
    from llm_assets.settings import GenerationConfig

    answered_in: list[Any] = []

    def recording_dtype(loaded: Any, *args: Any, **kwargs: Any) -> Any:
        answered_in.append(next(loaded.parameters()).dtype)
        return generate_answers(loaded, *args, **kwargs)

    monkeypatch.setattr(generation, "generate_answers", recording_dtype)

    tokenizer, model = tiny_model(seed=7)
    model.save_pretrained(tmp_path / "model")
    conversations = [to_messages("How do I restart?", "Quit and reopen it.")]
    prompts = [render_chat(tokenizer, [{"role": "user", "content": "Sync?"}], True)]
    config = GenerationConfig(max_new_tokens=5, repetition_penalty=1.0, cpu_bf16="on")
    scoring = ReferenceScoring({"golden": conversations}, max_length=512)

    model_under_test = ModelUnderTest("base", str(tmp_path / "model"))
    result = transformers_answers(model_under_test, tokenizer, {"base": prompts}, config, scoring)
    result = result["base"]

    assert answered_in == [torch.bfloat16]
    fp32 = perplexity(model, tokenizer, conversations, max_length=512)
    assert result.perplexity["golden"].row_nll == pytest.approx(fp32.row_nll, rel=1e-5)
    bf16_answers = generate_answers(model.to(torch.bfloat16), tokenizer, prompts, config)
    assert result.answers == bf16_answers.answers
    assert result.new_tokens == bf16_answers.new_tokens


def test_perplexity_in_bf16_when_asked_is_the_bf16_weights_perplexity(tmp_path: Any) -> None:
    """cpu_bf16_perplexity: the perplexity is the bf16 model's, measured on the same load."""
    import torch

    from llm_assets.evaluation.generation import (
        ModelUnderTest,
        ReferenceScoring,
        transformers_answers,
    )
    from llm_assets.settings import GenerationConfig

    tokenizer, model = tiny_model(seed=7)
    model.save_pretrained(tmp_path / "model")
    conversations = [to_messages("How do I restart?", "Quit and reopen it.")]
    prompts = [render_chat(tokenizer, [{"role": "user", "content": "Sync?"}], True)]
    scoring = ReferenceScoring({"golden": conversations}, max_length=512)
    model_under_test = ModelUnderTest("base", str(tmp_path / "model"))

    def measured(config: GenerationConfig) -> list[float]:
        result = transformers_answers(model_under_test, tokenizer, {"b": prompts}, config, scoring)
        return result["b"].perplexity["golden"].row_nll

    settings = {"max_new_tokens": 2, "repetition_penalty": 1.0, "cpu_bf16": "on"}
    in_bf16 = measured(GenerationConfig(**settings, cpu_bf16_perplexity=True))
    in_fp32 = measured(GenerationConfig(**settings))
    bf16 = perplexity(model.to(torch.bfloat16), tokenizer, conversations, max_length=512)
    assert in_bf16 == pytest.approx(bf16.row_nll, rel=1e-6)
    assert in_bf16 != pytest.approx(in_fp32, rel=1e-6)
    # Without bf16 answers the setting changes nothing: perplexity stays fp32.
    off = {**settings, "cpu_bf16": "off"}
    assert measured(GenerationConfig(**off, cpu_bf16_perplexity=True)) == pytest.approx(
        in_fp32, rel=1e-5
    )
