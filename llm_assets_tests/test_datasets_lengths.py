"""Token lengths and the chat template picked for training, on a real (tiny) tokenizer."""

from pathlib import Path
from typing import Any

import pytest

from llm_assets.datasets.chat_template import (
    DEFAULT_CHAT_TEMPLATE,
    load_chat_tokenizer,
    to_messages,
    training_chat_template,
)
from llm_assets.datasets.lengths import conversation_token_counts, length_stats
from llm_assets.training.base_model import train_tokenizer

TEXTS = ["Restart the Aurora client.", "Selective sync keeps folders in the cloud."] * 20
LLAMA_STYLE = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return train_tokenizer(TEXTS, vocab_size=300)


def test_token_counts_are_the_rendered_conversation(tokenizer: Any) -> None:
    short = to_messages("Restart?", "Restart the Aurora client.")
    long = to_messages("Sync?", " ".join(TEXTS[:10]), system_prompt="Be brief.")
    counts = conversation_token_counts(tokenizer, [short, long])
    rendered = tokenizer.apply_chat_template(short, tokenize=False)
    assert counts[0] == len(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    assert counts[1] > counts[0]
    stats = length_stats({"train": counts, "empty": []}, max_length=counts[0])
    train = stats.set_index("split").loc["train"]
    assert (train["rows"], train["min"], train["max"], train["over_max"]) == (
        2,
        counts[0],
        counts[1],
        1,
    )
    assert stats.set_index("split").loc["empty", "rows"] == 0


def test_a_tokenizer_without_template_gets_chatml_everywhere(
    tokenizer: Any, tmp_path: Path
) -> None:
    import copy

    assert training_chat_template(tokenizer) == (DEFAULT_CHAT_TEMPLATE, "tokenizer")
    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None
    bare.save_pretrained(tmp_path / "base")
    assert training_chat_template(bare) == (DEFAULT_CHAT_TEMPLATE, "default")
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(tmp_path / "base").chat_template is None
    loaded = load_chat_tokenizer(str(tmp_path / "base"))
    assert loaded.chat_template == DEFAULT_CHAT_TEMPLATE
    # The template saved with the dataset wins over whatever the folder holds.
    chosen = load_chat_tokenizer(str(tmp_path / "base"), chat_template=LLAMA_STYLE)
    rendered = chosen.apply_chat_template(to_messages("Hi", "Hello"), tokenize=False)
    assert rendered == "[user] Hi\n[assistant] Hello\n"
