from pathlib import Path

import pytest

from llm_assets.datasets.chat_template import render_chat, to_messages
from llm_assets.settings import ModelConfig
from llm_assets.training.base_model import (
    BaseModelUnavailable,
    resolve_pretrained,
    train_tokenizer,
    weights_identity,
)


def test_absent_base_model_says_how_to_provide_it(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    config = ModelConfig(kind="pretrained", id_or_path="acme/does-not-exist-7b")
    with pytest.raises(BaseModelUnavailable, match="huggingface-cli download acme/does-not-exist"):
        resolve_pretrained(config)


def test_local_folder_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BaseModelUnavailable, match="no config.json"):
        resolve_pretrained(ModelConfig(kind="pretrained", id_or_path=str(tmp_path)))


def test_hub_snapshot_is_identified_by_its_commit(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    assert weights_identity(str(snapshot)) == "hf:" + "a" * 40


def test_trained_tokenizer_round_trips_and_renders_chatml() -> None:
    texts = ["Selective sync keeps folders in the cloud only.", "Restart the Aurora client."] * 20
    tokenizer = train_tokenizer(texts, vocab_size=300)
    ids = tokenizer("Restart the Aurora client.", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == "Restart the Aurora client."
    messages = to_messages("How do I restart?", "Quit and reopen it.", system_prompt="Be brief.")
    rendered = render_chat(tokenizer, messages)
    assert rendered == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHow do I restart?<|im_end|>\n"
        "<|im_start|>assistant\nQuit and reopen it.<|im_end|>\n"
    )
    assert render_chat(tokenizer, messages, for_generation=True).endswith("<|im_start|>assistant\n")


def test_template_differences_catch_a_changed_template() -> None:
    import copy

    from llm_assets.datasets.chat_template import template_differences

    texts = ["Restart the Aurora client.", "Selective sync keeps folders in the cloud."] * 20
    trained = train_tokenizer(texts, vocab_size=300)
    rows = [to_messages("How do I restart?", "Quit and reopen it.", system_prompt="Be brief.")]
    assert template_differences(trained, copy.deepcopy(trained), rows) == []
    drifted = copy.deepcopy(trained)
    drifted.chat_template = trained.chat_template.replace("<|im_start|>", "<|im_start|> ")
    assert template_differences(trained, drifted, rows) == [
        "row 0 conversation: rendered text differs",
        "row 0 prompt: rendered text differs",
    ]
