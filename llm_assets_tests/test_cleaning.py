import json

import pandas as pd

from llm_assets.cleaning.chain import clean_corpus, read_forget_requests
from llm_assets.cleaning.ledger import ledger_discrepancies
from llm_assets.cleaning.normalize import (
    apply_terminology,
    dedup_key,
    expand_contractions,
    normalize_text,
)
from llm_assets.settings import CleaningConfig, NearDuplicateConfig
from llm_assets.sources.records import RawRecord, quarantined, records_to_frame


def _raw() -> pd.DataFrame:
    return records_to_frame(
        [
            RawRecord(
                "T-1", "tickets", "t.jsonl#L1", "Sync stops at 99%. Mail me: a@b.io", "Restart."
            ),
            RawRecord(
                "T-2", "tickets", "t.jsonl#L2", "sync stops at 99%.  mail me: a@b.io", "restart."
            ),
            RawRecord("T-3", "tickets", "t.jsonl#L3", "hi", "ok"),
            quarantined("tickets", "t.jsonl#L4", "source.malformed_json", "t.jsonl#L4: bad"),
            RawRecord("d.md", "docs", "d.md", "# Title\n\nA document about selective sync."),
        ]
    )


def test_clean_corpus_accounts_for_every_record() -> None:
    result = clean_corpus(_raw(), CleaningConfig(min_chars=5))
    ledger = result.ledger.set_index("record_id")
    assert ledger.loc["T-1", "action"] == "kept"
    assert ledger.loc["T-2", "reason"] == "dedup.exact"
    assert ledger.loc["T-2", "duplicate_of"] == "tickets/T-1"
    assert ledger.loc["T-3", "reason"] == "quality.too_few_words"
    assert ledger.loc["tickets:t.jsonl#L4", "action"] == "quarantined"
    assert ledger.loc["tickets:t.jsonl#L4", "detail"] == "t.jsonl#L4: bad"
    assert ledger_discrepancies({"tickets": 4, "docs": 1}, result.ledger) == []
    assert list(result.corpus["record_id"]) == ["T-1", "d.md"]


def test_clean_corpus_redacts_pii_in_prompt_and_answer() -> None:
    result = clean_corpus(_raw(), CleaningConfig(min_chars=5))
    assert "<EMAIL>" in result.corpus.loc[0, "text"]
    # Redaction runs before dedup, so the dropped re-send was redacted (and counted) too.
    assert result.pii_counts["EMAIL"] == 2
    assert result.corpus.loc[0, "pii_redactions"] == 1


def test_ledger_discrepancies_reports_lost_and_repeated_records() -> None:
    result = clean_corpus(_raw(), CleaningConfig(min_chars=5))
    lost = result.ledger.iloc[1:]
    assert any(
        "4 raw records but 3" in p for p in ledger_discrepancies({"tickets": 4, "docs": 1}, lost)
    )
    repeated = pd.concat([result.ledger, result.ledger.iloc[:1]])
    assert any(
        "share a (source, record_id)" in p
        for p in ledger_discrepancies({"tickets": 4, "docs": 1}, repeated)
    )


def test_normalize_text_repairs_mojibake_and_whitespace() -> None:
    assert normalize_text("cafÃ©  is\u00a0open\r\n\r\n\r\n\r\nnow ") == "café is open\n\nnow"


def test_dedup_key_ignores_case_and_spacing_only() -> None:
    assert dedup_key("Hello  World", None) == dedup_key("hello world", "")
    assert dedup_key("Hello World") != dedup_key("Hello Word")


def test_clean_corpus_redacts_pii_in_provenance_fields() -> None:
    raw = records_to_frame(
        [
            RawRecord(
                "T-9",
                "tickets",
                "t#L9",
                "A long enough question about sync.",
                "Answer.",
                fields={"customer_email": "jane@example.com", "channel": "email"},
            )
        ]
    )
    fields = json.loads(clean_corpus(raw, CleaningConfig()).corpus.loc[0, "fields"])
    assert fields == {"customer_email": "<EMAIL>", "channel": "email"}


def test_clean_corpus_drops_forgotten_noisy_low_quality_and_near_duplicate_records() -> None:
    base = "The desktop client stops syncing at 99 percent after the update to version 4.2"
    raw = records_to_frame(
        [
            RawRecord("T-1", "tickets", "t#L1", f"{base} on my laptop.", "Reinstall it."),
            RawRecord("T-2", "tickets", "t#L2", f"{base} on my desktop.", "Reinstall it."),
            RawRecord("T-3", "tickets", "t#L3", "asdf qwer zxcv " * 10, "ok"),
            RawRecord(
                "T-4",
                "tickets",
                "t#L4",
                "Um, sharing links expire too early.<br>Thanks,\nJane\nSent from my iPhone",
                "Set the expiry in the link settings.",
            ),
            RawRecord("T-5", "tickets", "t#L5", "Please delete my data, this is my request.", "x"),
        ]
    )
    config = CleaningConfig(
        min_chars=5, near_dedup=NearDuplicateConfig(threshold=0.7, shingle_size=3)
    )
    result = clean_corpus(raw, config, forget={"tickets/T-5"})
    ledger = result.ledger.set_index("record_id")
    assert ledger.loc["T-5", "reason"] == "forget.request"
    assert ledger.loc["T-2", "reason"] == "dedup.near"
    assert ledger.loc["T-2", "duplicate_of"] == "tickets/T-1"
    assert ledger.loc["T-3", "reason"] == "quality.repetition"
    assert "quality.repetition" in ledger.loc["T-3", "detail"]
    kept = result.corpus.set_index("record_id")
    assert kept.loc["T-4", "text"] == "Sharing links expire too early."
    assert ledger_discrepancies({"tickets": 5}, result.ledger) == []
    stages = [row["stage"] for row in result.stage_counts]
    assert stages[:3] == ["forget", "source.readable", "noise"]
    assert result.rewrites["noise.signature"] == 1
    assert result.near_duplicate_index is not None


def test_read_forget_requests_ignores_comments_and_blanks() -> None:
    assert read_forget_requests(["# GDPR 2026-11", "tickets/T-5  # Jane", "", "d.md"]) == {
        "tickets/T-5",
        "d.md",
    }


def test_normalize_text_keeps_indentation_and_code_blocks() -> None:
    text = "Run   this:\n\n```\ndef f():\n    return  1\n```\n    indented   line  \n"
    assert normalize_text(text) == (
        "Run this:\n\n```\ndef f():\n    return  1\n```\n    indented line"
    )


def test_expand_contractions_and_terminology() -> None:
    assert expand_contractions("We can't sync and it's slow; they're stuck.") == (
        "We cannot sync and it is slow; they are stuck."
    )
    assert expand_contractions("Don't worry, I'm here") == "Do not worry, I am here"
    terms = {"e-mail": "email", "AuroraSync": "Aurora Sync"}
    assert apply_terminology("Send an E-mail from aurorasync.", terms) == (
        "Send an email from Aurora Sync."
    )


def test_code_sources_skip_noise_and_prose_filters() -> None:
    code = "-- migration\nSELECT id FROM users;\n<div>kept</div>\n" + "x = 1\n" * 60
    raw = records_to_frame([RawRecord("m.sql", "code", "m.sql", code)])
    kept = clean_corpus(raw, CleaningConfig(), code_sources={"code"}).corpus
    assert kept.loc[0, "text"] == code.strip("\n")
    as_prose = clean_corpus(raw, CleaningConfig()).ledger
    assert as_prose.loc[0, "action"] == "dropped"


def test_near_duplicate_index_is_reused_and_pruned_between_runs() -> None:
    base = (
        "After the 4.2 update the desktop client stops syncing at ninety nine percent and the "
        "status icon keeps spinning while the activity log shows nothing new for hours"
    )
    first = [
        RawRecord("T-1", "tickets", "t#L1", f"{base} on my work laptop.", "Reinstall."),
        RawRecord(
            "T-2", "tickets", "t#L2", "How do I share a folder with my whole team?", "Share."
        ),
    ]
    config = CleaningConfig(near_dedup=NearDuplicateConfig(threshold=0.7, shingle_size=3))
    run1 = clean_corpus(records_to_frame(first), config)
    assert run1.near_duplicate_index is not None
    assert sorted(run1.near_duplicate_index.keys) == ["tickets/T-1", "tickets/T-2"]

    # Next quarter: T-2 was deleted at the source, T-3 nearly repeats T-1.
    later = [
        first[0],
        RawRecord("T-3", "tickets", "t#L3", f"{base} on my home laptop.", "Reinstall."),
    ]
    run2 = clean_corpus(
        records_to_frame(later), config, near_duplicate_index=run1.near_duplicate_index
    )
    ledger = run2.ledger.set_index("record_id")
    assert ledger.loc["T-1", "action"] == "kept"
    assert ledger.loc["T-3", "duplicate_of"] == "tickets/T-1"
    assert run2.near_duplicate_index is not None
    assert run2.near_duplicate_index.keys == ["tickets/T-1"]


def _ticket_corpus(count: int) -> pd.DataFrame:
    """Tickets sharing a footer line (boilerplate), with re-sends and near re-sends among them."""
    records = []
    for number in range(count):
        topic = ["selective sync", "guest links", "offline mode", "the audit log"][
            (number // 3) % 4
        ]
        body = (
            f"Ticket {number // 3}: {topic} fails after the update on device {number // 3}, "
            f"and the client shows error {1000 + number // 3} before it stops.\n"
            "Submitted through the Aurora Sync help widget"
        )
        if number % 3 == 2:
            body = body.replace("stops", "halts")
        records.append(RawRecord(f"T-{number}", "tickets", f"t#L{number}", body, "Reinstall."))
    return records_to_frame(records)


def test_streamed_batches_and_worker_processes_give_the_same_result_as_one_batch() -> None:
    raw = _ticket_corpus(60)
    config = CleaningConfig(min_chars=5, near_dedup=NearDuplicateConfig(threshold=0.5))
    whole = clean_corpus(raw, config.model_copy(update={"batch_size": 1000}))
    streamed = clean_corpus(raw, config.model_copy(update={"batch_size": 7}), workers=2)

    def outcome(ledger: pd.DataFrame) -> pd.DataFrame:
        return ledger.sort_values("record_id").reset_index(drop=True)

    pd.testing.assert_frame_equal(outcome(whole.ledger), outcome(streamed.ledger))
    pd.testing.assert_frame_equal(whole.corpus, streamed.corpus)
    assert whole.stage_counts == streamed.stage_counts
    # The footer is boilerplate over the whole input, though no batch of 7 shows it 10 times.
    assert whole.rewrites["noise.boilerplate"] == 60
    assert not whole.corpus["text"].str.contains("help widget").any()
    assert set(whole.ledger["reason"].dropna()) == {"dedup.exact", "dedup.near"}


def test_pseudonyms_agree_across_batches() -> None:
    raw = records_to_frame(
        [
            RawRecord(f"T-{n}", "tickets", f"t#L{n}", f"Ticket {n}: please call Maria Garcia.")
            for n in range(4)
        ]
    )
    config = CleaningConfig(min_chars=5, pii_pseudonymize=True, batch_size=1, exact_dedup=False)
    config = config.model_copy(update={"near_dedup": NearDuplicateConfig(enabled=False)})
    texts = clean_corpus(raw, config).corpus["text"]
    tags = {text.rsplit("call ", 1)[1] for text in texts}
    assert len(tags) == 1 and next(iter(tags)).startswith("<PERSON_")


def test_normalize_text_repairs_mojibake_and_control_characters_but_leaves_ascii_alone() -> None:
    assert normalize_text("The caf\u00c3\u00a9 opens at 9.") == "The café opens at 9."
    assert normalize_text("bell\x07 here") == "bell here"
    assert normalize_text("plain  ASCII   text") == "plain ASCII text"


def test_a_batch_emptied_by_early_stages_passes_through_the_later_ones() -> None:
    raw = records_to_frame(
        [
            quarantined("tickets", "t#L1", "source.malformed_json", "t#L1: bad"),
            RawRecord("T-2", "tickets", "t#L2", "The desktop client stops syncing at night."),
        ]
    )
    result = clean_corpus(raw, CleaningConfig(min_chars=5, batch_size=1))
    assert list(result.ledger["action"]) == ["quarantined", "kept"]


def test_documents_sources_get_documentation_thresholds_and_every_drop_its_reason() -> None:
    options = ["verbose", "quiet", "format", "file", "jobs", "schema", "table", "data-only"]
    page = "\n".join(
        [f"--{option}\nSets the {option} option of the pg_dump command.\n" for option in options]
        * 2
    )
    raw = records_to_frame(
        [
            RawRecord("ref.html", "manual", "ref.html", page),
            RawRecord("T-9", "tickets", "t.jsonl#L9", page),
        ]
    )
    result = clean_corpus(raw, CleaningConfig(), documents_sources={"manual"})
    ledger = result.ledger.set_index("record_id")
    assert ledger.loc["ref.html", "action"] == "kept"
    assert ledger.loc["T-9", "reason"] == "quality.duplicate_lines"
    assert "quality.repetition" in ledger.loc["T-9", "detail"]

    web = CleaningConfig(documents_quality={"preset": "web"})  # type: ignore[arg-type]
    dropped = clean_corpus(raw, web, documents_sources={"manual"}).ledger.set_index("record_id")
    assert dropped.loc["ref.html", "action"] == "dropped"
    assert "quality.repetition" in dropped.loc["ref.html", "detail"]
