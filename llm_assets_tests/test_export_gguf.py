"""GGUF exports through llama.cpp on a tiny Llama (built once for this module): the file carries
the training template and the system prompt, the Modelfile renders like training, and the f16
file answers and scores like the transformers model; on the real SmolLM2 (slow) the f16 file's
greedy answers are token-identical to the merged model's."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_assets.datasets.chat_template import DEFAULT_CHAT_TEMPLATE, render_chat, to_messages
from llm_assets.settings import GenerationConfig

pytest.importorskip("llama_cpp", reason="llama-cpp-python is installed by `make setup`")

from llm_assets.export.gguf import (  # noqa: E402
    GGUF_FILE,
    MODELFILE,
    SYSTEM_PROMPT_KEY,
    converter_script,
    gguf_metadata,
    ollama_template,
    tokenizer_with_gguf_template,
    write_gguf_export,
)
from llm_assets.export.quantize import ExportUnavailable  # noqa: E402

from .conftest import SMOLLM2_GGUF, require_smollm2, save_tiny_llama  # noqa: E402

SYSTEM_PROMPT = "You are the support assistant for Aurora Sync."
QUESTIONS = [
    "How do I restore a deleted file?",
    "Why does selective sync keep folders local?",
    "Restore deleted files from the trash, please.",
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def exports(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    converter_script()  # fails with what to do when `make setup` has not extracted it
    folder = tmp_path_factory.mktemp("exports")
    for export_format in ("gguf-f16", "gguf-q8_0"):
        write_gguf_export(
            tiny_model,
            folder / export_format,
            export_format,
            folder / "merged-f16.gguf",
            SYSTEM_PROMPT,
            repetition_penalty=1.1,
            default_pre=True,
        )
    return folder


def _conversations() -> list[list[dict[str, str]]]:
    return [
        to_messages(q, "Open the trash and restore it.", system_prompt="Be brief.")
        for q in QUESTIONS
    ]


def test_gguf_file_carries_the_training_template_and_the_system_prompt(
    tiny_model: Path, exports: Path
) -> None:
    from transformers import AutoTokenizer

    from llm_assets.datasets.chat_template import template_differences

    for export_format, file_type in (("gguf-f16", 1), ("gguf-q8_0", 7)):
        metadata = gguf_metadata(exports / export_format / GGUF_FILE)
        assert metadata["general.file_type"] == file_type
        assert metadata[SYSTEM_PROMPT_KEY] == SYSTEM_PROMPT
        assert "{% generation %}" not in metadata["tokenizer.chat_template"]
        trained = AutoTokenizer.from_pretrained(tiny_model)
        from_gguf = tokenizer_with_gguf_template(tiny_model, exports / export_format)
        assert template_differences(trained, from_gguf, _conversations()) == []
    assert (exports / "gguf-q8_0" / GGUF_FILE).stat().st_size < (
        exports / "gguf-f16" / GGUF_FILE
    ).stat().st_size


def test_modelfile_renders_like_the_training_template(tiny_model: Path, exports: Path) -> None:
    modelfile = (exports / "gguf-f16" / MODELFILE).read_text()
    lines = modelfile.splitlines()
    assert lines[0] == f"FROM ./{GGUF_FILE}"
    assert f'SYSTEM """{SYSTEM_PROMPT}"""' in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "PARAMETER repeat_penalty 1.1" in modelfile
    template = modelfile.split('TEMPLATE """')[1].split('"""')[0]
    # The Go template Ollama runs, expanded by hand for one conversation.
    body = template.removeprefix("{{- range .Messages }}")
    message, generation_prompt = body.split("{{ end }}")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    conversation = _conversations()[0]
    expanded = "".join(
        message.replace("{{ .Role }}", m["role"]).replace("{{ .Content }}", m["content"])
        for m in conversation[:-1]
    )
    assert expanded + generation_prompt == render_chat(tokenizer, conversation, True)


def test_a_template_ollama_cannot_express_is_refused(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE.replace(
        "{% if add_generation_prompt %}", "{% if add_generation_prompt %}{{ 'Answer:' }}"
    ).replace("{{ '<|im_start|>' + message['role']", "{{ '<|im_start|>' + message['role'] + '!'")
    with pytest.raises(ExportUnavailable, match="write the Modelfile's TEMPLATE by hand"):
        ollama_template(tokenizer)


def test_gguf_f16_scores_and_answers_like_the_transformers_model(
    tiny_model: Path, exports: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_assets.evaluation.generation import generate_answers, prompt_texts
    from llm_assets.evaluation.llama_cpp_engine import (
        gguf_generate_answers,
        gguf_perplexity,
        load_gguf,
    )
    from llm_assets.evaluation.perplexity import perplexity

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    conversations = _conversations()
    gguf_file = exports / "gguf-f16" / GGUF_FILE

    expected = perplexity(model, tokenizer, conversations, 256)
    scored = gguf_perplexity(
        load_gguf(gguf_file, 256, all_logits=True), tokenizer, conversations, 256
    )
    assert scored.tokens == expected.tokens
    assert scored.perplexity == pytest.approx(expected.perplexity, rel=0.01)

    config = GenerationConfig(max_new_tokens=12, batch_size=1)
    prompts = prompt_texts(tokenizer, conversations)
    ours = gguf_generate_answers(load_gguf(gguf_file, 256), tokenizer, prompts, config)
    theirs = generate_answers(model, tokenizer, prompts, config)
    assert ours.answers == theirs.answers
    assert ours.new_tokens == theirs.new_tokens


def test_an_export_is_measured_on_the_threads_torch_computes_on(
    exports: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline step's llama.cpp gets the step's threads (torch's), not half the cores a
    server leaves itself."""
    import torch

    from llm_assets.evaluation import llama_cpp_engine
    from llm_assets.evaluation.llama_cpp_engine import step_threads
    from llm_assets.export.gguf import measure_gguf_export

    loaded_on: list[int | None] = []
    load = llama_cpp_engine.load_gguf

    def recording(path: Path, context: int, all_logits: bool = False, threads: int | None = None):
        loaded_on.append(threads)
        return load(path, context, all_logits, threads)

    monkeypatch.setattr(llama_cpp_engine, "load_gguf", recording)
    config = GenerationConfig(max_new_tokens=4, batch_size=1)
    measure_gguf_export(
        exports / "gguf-f16", "gguf-f16", _conversations()[:1], 256, config, lambda a, r: 0.0
    )
    assert loaded_on == [torch.get_num_threads()] * 2

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert step_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_context_aware_answers_on_llama_cpp_equal_transformers(
    tiny_model: Path, exports: Path
) -> None:
    """Context-aware decoding on two llama.cpp contexts (evaluation.engine llama-cpp, and the
    gateway's in-process engine) answers as transformers' batched processor does, and differs
    from plain decoding."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_assets.evaluation.generation import generate_answers, prompt_texts
    from llm_assets.evaluation.llama_cpp_engine import gguf_generate_answers, load_gguf

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    grounded = [
        [{"role": "system", "content": f"Be brief. Excerpts: {'Open the trash. ' * 3}"}, *rest]
        for _, *rest in _conversations()
    ]
    prompts = prompt_texts(tokenizer, [messages[:-1] for messages in grounded])
    closed_book: list[str | None] = list(
        prompt_texts(tokenizer, [messages[:-1] for messages in _conversations()])
    )
    closed_book[1] = None  # a prompt without context decodes plainly
    config = GenerationConfig(max_new_tokens=12, batch_size=1, context_contrast=1.0)
    gguf_file = exports / "gguf-f16" / GGUF_FILE

    ours = gguf_generate_answers(
        load_gguf(gguf_file, 256),
        tokenizer,
        prompts,
        config,
        "tuned",
        closed_book,
        load_gguf(gguf_file, 256),
    )
    theirs = generate_answers(model, tokenizer, prompts, config, closed_book=closed_book)
    plain = generate_answers(model, tokenizer, prompts, config)
    assert ours.answers == theirs.answers
    assert ours.new_tokens == theirs.new_tokens
    assert theirs.answers[1] == plain.answers[1] and theirs.answers != plain.answers


@pytest.mark.slow
def test_smollm2_gguf_f16_answers_token_identical_to_the_merged_model(tmp_path: Path) -> None:
    """The real model: SmolLM2 as a model folder (what merged_model holds for a base without an
    adapter), exported to f16 GGUF; greedy answers with the evaluation's repetition penalty are
    the same tokens in transformers (fp32) and llama.cpp."""
    require_smollm2()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_assets.datasets.chat_template import training_chat_template
    from llm_assets.evaluation.generation import answer_repetition_penalty, prompt_texts
    from llm_assets.evaluation.llama_cpp_engine import answer_token_ids, load_gguf
    from llm_assets.training.gguf import convert_gguf_to_folder, resolve_gguf_file

    source = resolve_gguf_file(SMOLLM2_GGUF, tmp_path)
    merged = tmp_path / "merged"
    convert_gguf_to_folder(source, merged)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    tokenizer.chat_template = training_chat_template(tokenizer)[0]
    tokenizer.save_pretrained(merged)
    write_gguf_export(
        merged, tmp_path / "gguf-f16", "gguf-f16", tmp_path / "f16.gguf", SYSTEM_PROMPT, 1.1
    )
    assert gguf_metadata(tmp_path / "gguf-f16" / GGUF_FILE)["tokenizer.ggml.pre"] == "smollm"

    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    llm = load_gguf(tmp_path / "gguf-f16" / GGUF_FILE, 512)
    config = GenerationConfig(max_new_tokens=48)
    questions = [
        "What is the capital of France?",
        "How do I restore a deleted file?",
        "Name three colors.",
    ]
    prompts = prompt_texts(
        tokenizer, [to_messages(q, "", system_prompt=SYSTEM_PROMPT) for q in questions]
    )
    for prompt in prompts:
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            output = model.generate(
                torch.tensor([ids]),
                max_new_tokens=config.max_new_tokens,
                do_sample=False,
                logits_processor=answer_repetition_penalty(config.repetition_penalty, len(ids)),
                eos_token_id=tokenizer.eos_token_id,
            )[0, len(ids) :].tolist()
        expected = (
            output[: output.index(tokenizer.eos_token_id)]
            if tokenizer.eos_token_id in output
            else output
        )
        assert answer_token_ids(llm, ids, config, {tokenizer.eos_token_id}) == expected


def test_golden_set_answered_on_llama_cpp_like_on_transformers(tiny_model: Path) -> None:
    """evaluation.engine: llama-cpp: each model under test converted to f16 GGUF answers the
    golden prompts with the same text and token counts as on transformers."""
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

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    golden = pd.DataFrame(
        {
            "pair_id": [f"g{n}" for n in range(3)],
            "source": "tickets",
            "task": "support_answer",
            "messages": _conversations(),
        }
    )
    models = [Contender(ModelUnderTest("tuned", str(tiny_model)))]
    # One prompt per batch: transformers' left padding alone can move a near-tie on random weights.
    config = GenerationConfig(max_new_tokens=12, batch_size=1)

    closed_book = {CLOSED_BOOK: ground_prompts(golden_prompts(golden), None, ContextFormat(), None)}

    on_transformers = answer_golden_set(models, tokenizer, golden, config, closed_book)
    on_llama_cpp = answer_golden_set(
        models, tokenizer, golden, config, closed_book, llama_cpp_answerer(default_pre=True)
    )

    assert on_llama_cpp["answer"].to_list() == on_transformers["answer"].to_list()
    assert on_llama_cpp["new_tokens"].to_list() == on_transformers["new_tokens"].to_list()
