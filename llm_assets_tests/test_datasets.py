import json
from pathlib import Path

import pandas as pd
import pytest

from llm_assets.datasets.leaks import find_leaks
from llm_assets.datasets.sft import build_sft_pairs, markdown_sections, records_without_pairs
from llm_assets.datasets.splits import split_golden, split_train_validation, training_splits
from llm_assets.settings import (
    AnswerTemplate,
    ConversationTemplate,
    DatasetConfig,
    DocumentTemplates,
    PairTemplates,
    ProfileError,
    load_profile,
)

DOC = """# Selective sync

Intro paragraph that is long enough to become a pair on its own, describing the feature well.

## Choosing folders

Open Preferences and untick the folders you do not want on this computer; they stay in the cloud.

## Tiny
short
"""


def test_markdown_sections_split_on_headings() -> None:
    sections = markdown_sections(DOC)
    assert [heading for heading, _ in sections] == ["Selective sync", "Choosing folders", "Tiny"]
    assert sections[1][1].startswith("Open Preferences")


def _record(record_id: str, source: str, text: str, response: str | None, **fields: object) -> dict:
    return {
        "record_id": record_id,
        "source": source,
        "text": text,
        "response": response,
        "fields": json.dumps(fields),
    }


def _corpus() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _record("d.md", "docs", DOC, None, title="Selective sync"),
            _record(
                "T-1",
                "tickets",
                "Login loop\n\nIt keeps asking.",
                "Clear the keychain entry.",
                product_area="account",
            ),
        ]
    )


def test_build_sft_pairs_makes_chat_rows_from_answers_and_sections() -> None:
    pairs = build_sft_pairs(_corpus(), DatasetConfig(system_prompt="Be helpful.")).pairs
    assert list(pairs["task"]) == ["doc_section", "doc_section", "support_answer"]
    assert list(pairs["section"]) == ["Selective sync", "Choosing folders", ""]
    ticket = pairs.iloc[2]
    assert [m["role"] for m in ticket["messages"]] == ["system", "user", "assistant"]
    assert ticket["messages"][1]["content"] == "Login loop\n\nIt keeps asking."
    assert ticket["messages"][-1]["content"] == "Clear the keychain entry."
    assert pairs["pair_id"].is_unique


def test_answer_template_per_source_uses_record_fields() -> None:
    template = AnswerTemplate(
        task="ticket_resolution",
        instruction="Resolve this {product_area} ticket.",
        input="{text}",
        output="{response}",
    )
    config = DatasetConfig(templates=PairTemplates(by_source={"tickets": template}))
    ticket = build_sft_pairs(_corpus(), config).pairs.iloc[-1]
    assert ticket["task"] == "ticket_resolution"
    assert ticket["instruction"] == "Resolve this account ticket."
    assert ticket["input"] == "Login loop\n\nIt keeps asking."
    assert ticket["messages"][-2]["content"] == (
        "Resolve this account ticket.\n\nLogin loop\n\nIt keeps asking."
    )


def test_record_lacking_a_template_field_is_skipped_with_the_reason() -> None:
    template = AnswerTemplate(instruction="[{channel}] {text}")
    config = DatasetConfig(templates=PairTemplates(answer=template))
    built = build_sft_pairs(_corpus(), config)
    assert list(built.pairs["source"].unique()) == ["docs"]
    skipped = built.skipped.iloc[0]
    assert skipped["reason"] == "dataset.template_field_missing"
    assert "{channel}" in skipped["detail"] and "tickets/T-1" in skipped["detail"]
    again = records_without_pairs(_corpus(), built.pairs, config)
    assert again.to_dict("records") == built.skipped.to_dict("records")


def test_document_tasks_add_summary_and_continuation() -> None:
    text = (
        "# Vault\n\nThe vault encrypts files end to end. Only you hold the key, so nobody "
        "else can read them.\n\n"
        "## Creating a vault\n\nOpen Settings and choose Vault. Pick a passphrase of twelve "
        "or more characters.\n\nThe passphrase is never sent to us, so write it down and keep "
        "it somewhere safe.\n\n"
        "## Recovery\n\nA recovery key is shown once. Print it, because support cannot reset "
        "a lost passphrase for you.\n"
    )
    documents = DocumentTemplates(tasks=["section_qa", "summary", "continuation"])
    corpus = pd.DataFrame([_record("v.md", "docs", text, None, title="Vault")])
    pairs = build_sft_pairs(corpus, DatasetConfig(templates=PairTemplates(documents=documents)))
    by_task = pairs.pairs.groupby("task").size().to_dict()
    assert by_task == {"doc_section": 3, "doc_summary": 1, "doc_continuation": 1}
    summary = pairs.pairs[pairs.pairs["task"] == "doc_summary"].iloc[0]
    assert summary["instruction"] == "Summarize the Vault documentation."
    assert summary["output"] == (
        "The vault encrypts files end to end.\n\n"
        "- Creating a vault: Open Settings and choose Vault.\n"
        "- Recovery: A recovery key is shown once."
    )
    continuation = pairs.pairs[pairs.pairs["task"] == "doc_continuation"].iloc[0]
    assert continuation["section"] == "Creating a vault"
    assert continuation["input"].startswith("Open Settings") and continuation["input"].endswith(
        "characters."
    )
    assert continuation["output"].startswith("The passphrase is never sent")


def test_chat_record_becomes_one_multi_turn_pair() -> None:
    messages = [
        {"role": "user", "content": "My sync is stuck."},
        {"role": "assistant", "content": "Which device?"},
        {"role": "user", "content": "The laptop."},
        {"role": "assistant", "content": "raw answer, before cleaning"},
    ]
    record = _record(
        "c1", "chats", "user: My sync is stuck.", "Restart it.", messages=messages, task="chat"
    )
    corpus = pd.DataFrame([record])
    pair = build_sft_pairs(corpus, DatasetConfig(system_prompt="Be kind.")).pairs.iloc[0]
    assert [m["role"] for m in pair["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    # The final answer is the cleaned response, not the raw message.
    assert pair["messages"][-1]["content"] == "Restart it." == pair["output"]
    assert pair["instruction"] == "The laptop."
    assert pair["input"] == "user: My sync is stuck.\nassistant: Which device?"
    no_history = DatasetConfig(
        templates=PairTemplates(conversation=ConversationTemplate(history_turns=0))
    )
    short = build_sft_pairs(corpus, no_history).pairs.iloc[0]
    assert [m["role"] for m in short["messages"]] == ["system", "user", "assistant"]


def test_dataset_templates_are_validated_when_the_profile_loads(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "sources:\n  - {name: t, kind: jsonl, path: t.jsonl}\n"
        "datasets:\n  templates:\n    documents: {section_qa: 'About {topic}'}\n"
    )
    with pytest.raises(ProfileError, match=r"\{topic\} is not available here"):
        load_profile(path)
    path.write_text(
        "sources:\n  - {name: t, kind: jsonl, path: t.jsonl}\n"
        "datasets:\n  templates:\n    by_source: {tikets: {instruction: '{text}'}}\n"
    )
    with pytest.raises(ProfileError, match="unknown sources: \\['tikets'\\]"):
        load_profile(path)
    path.write_text(
        "sources:\n  - {name: t, kind: jsonl, path: t.jsonl}\n"
        "datasets:\n  teacher: {enabled: true}\n"
    )
    with pytest.raises(ProfileError, match="teacher.enabled needs url and model"):
        load_profile(path)


def _pairs(n: int) -> pd.DataFrame:
    rows = []
    for i in range(n):
        source = "docs" if i % 3 == 0 else "tickets"
        rows.append(
            {
                "pair_id": str(i),
                "record_id": f"r{i}",
                "source": source,
                "task": source,
                "section": "",
                "instruction": f"q{i}",
                "input": "",
                "output": f"answer {i}",
            }
        )
    # Two tickets with the same answer must stay in one split.
    rows[1]["output"] = rows[2]["output"] = "same answer"
    return pd.DataFrame(rows)


def test_golden_split_is_stratified_and_leak_free() -> None:
    pairs = _pairs(90)
    golden, rest = split_golden(pairs, size=30, seed=1, threshold=0.8)
    assert 28 <= len(golden) <= 31
    assert abs((golden["source"] == "docs").mean() - 1 / 3) < 0.1
    assert find_leaks(golden, rest, 0.8).empty
    assert len(golden) + len(rest) == len(pairs)
    train, validation = split_train_validation(rest, 0.2, seed=1, threshold=0.8)
    assert find_leaks(validation, train, 0.8).empty
    assert abs(len(validation) - 0.2 * len(rest)) <= 2


def test_training_splits_drop_long_rows_and_golden_lookalikes_whole() -> None:
    pairs = _pairs(40).assign(token_count=[100] * 38 + [900, 100])
    golden = pd.DataFrame(
        [
            {
                "pair_id": "g1",
                "record_id": "golden.jsonl#L1",
                "source": "golden_file",
                "task": "golden",
                "section": "",
                "instruction": "q39",
                "input": "",
                "output": "a different answer",
            }
        ]
    )
    result = training_splits(pairs, golden, 512, 0.1, seed=3, threshold=0.8)
    assert list(result.too_long["pair_id"]) == ["38"]
    assert list(result.leaked["pair_id"]) == ["39"]
    assert list(result.leaked["match"]) == ["exact prompt"]
    kept = set(result.train["pair_id"]) | set(result.validation["pair_id"])
    assert kept == {str(i) for i in range(38)}
