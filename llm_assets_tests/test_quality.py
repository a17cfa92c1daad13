import json
from pathlib import Path

import pandas as pd
import pytest

from llm_assets.cleaning.quality import (
    QualityThresholds,
    filter_quality,
    looks_english,
    quality_reasons,
)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def sample_docs() -> list[str]:
    from llm_assets.sources.documents import html_to_markdown

    docs = []
    for path in sorted((SAMPLE / "docs").iterdir()):
        raw = path.read_text(encoding="utf-8")
        text = html_to_markdown(raw) if path.suffix == ".html" else raw
        assert text, f"no text extracted from {path.name}"
        docs.append(text)
    return docs


def sample_tickets() -> list[str]:
    tickets = []
    for line in (SAMPLE / "tickets" / "tickets.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get("body"):
            tickets.append(f"{row['body']}\n\n{row['resolution']}")
    return tickets


def test_quality_reasons_keep_every_sample_doc() -> None:
    for doc in sample_docs():
        assert quality_reasons(doc) == [], doc[:80]


def test_quality_reasons_keep_sample_tickets() -> None:
    tickets = sample_tickets()
    flagged = [text for text in tickets if quality_reasons(text)]
    assert len(tickets) >= 590
    assert len(flagged) <= 0.01 * len(tickets), flagged[:3]


def test_quality_reasons_keep_markdown_with_code_and_tables() -> None:
    page = (
        "# Install on Linux\n\nDownload the package and install it with your package manager.\n\n"
        "```bash\nsudo apt install ./aurora-sync_4.2.0_amd64.deb\naurora login --device-name nas\n"
        "systemctl --user enable --now aurora-sync.service\n```\n\n"
        "| Distro | Package | Minimum version |\n|---|---|---|\n| Ubuntu | .deb | 22.04 |\n"
        "| Fedora | .rpm | 39 |\n| Arch | AppImage | rolling |\n\n"
        "If the service does not start, check `journalctl --user -u aurora-sync` for errors."
    )
    assert quality_reasons(page) == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ok thanks", "quality.too_few_words"),
        ("asdkjh qwpoeiru zxmcnvb lkjhgf poiuytr mnbvcx qazwsx edcrfv tgbyhn ujmik olp qwerty",
         "quality.language"),
        (" ".join(["cheap sync cheap backup best price buy now"] * 20), "quality.repetition"),
        (" ".join(["buy aurora sync now, best backup deal"] * 3), "quality.repetition"),
        ("Hallo, seit dem letzten Update synchronisiert die App keine Dateien mehr auf meinem "
         "Laptop. Können Sie mir bitte helfen? Vielen Dank.", "quality.language"),
        ("Your app is fucking garbage and your support team are a bunch of useless idiots. "
         "Fix this shit now.", "quality.toxic"),
        ("You morons deleted my files. I hope you die in a fire.", "quality.toxic"),
        ("1234 5678 9012 3456 7890 1234 5678 9012 3456 7890 12 34 56 78", "quality.digit_ratio"),
        ("Loading...\nPlease wait...\nStill loading...\nAlmost there...\nDone",
         "quality.ellipsis_lines"),
    ],
)  # fmt: skip
def test_quality_reasons_flag_bad_text(text: str, reason: str) -> None:
    assert reason in quality_reasons(text)


def test_quality_reasons_do_not_flag_support_language_as_toxic() -> None:
    texts = [
        "How do I kill the process that hangs? The sync aborts, the script won't execute and "
        "there's a dead link on the help page. Damn.",
        "Run `kill -9 $(pgrep aurora)` to kill the hung daemon, then execute `aurora start`.",
        "The upload was aborted and the child process died; the parent job hangs forever.",
    ]
    for text in texts:
        assert "quality.toxic" not in quality_reasons(text), text


def test_quality_thresholds_turn_checks_off() -> None:
    german = "Hallo, seit dem letzten Update synchronisiert die App keine Dateien mehr."
    assert quality_reasons(german, QualityThresholds(languages=("en", "de"))) == []
    assert quality_reasons(german, QualityThresholds(languages=())) == []


def test_filter_quality_joins_reasons_per_record() -> None:
    texts = pd.Series(["How do I restore an older version of a file?", "ok", None])
    assert filter_quality(texts).tolist() == [
        "",
        "quality.too_few_words",
        "quality.too_few_words",
    ]


def test_looks_english_spares_english_prose_from_language_identification() -> None:
    english = "the sync client stops when you open a shared folder and it does not restart " * 2
    german = "der Client stoppt wenn man einen geteilten Ordner öffnet und startet nicht neu " * 2
    assert looks_english(english.casefold().split())
    assert not looks_english(german.casefold().split())
    assert not looks_english("the and of".split())  # too short to tell


def _reference_page() -> str:
    """A command-line reference page: option after option, the same words on every line."""
    options = ["verbose", "quiet", "format", "file", "jobs", "schema", "table", "data-only"]
    lines = ["# pg_dump options", ""]
    for option in options:
        lines += [f"--{option}", f"Sets the {option} option of the pg_dump command.", ""]
    return "\n".join(lines * 2)


def test_documentation_preset_keeps_reference_pages_the_web_preset_drops() -> None:
    page = _reference_page()
    assert "quality.repetition" in quality_reasons(page, QualityThresholds())
    assert quality_reasons(page, QualityThresholds(preset="documentation")) == []


def test_documentation_preset_starts_from_its_changes_and_keeps_explicit_keys() -> None:
    docs = QualityThresholds(preset="documentation", min_stop_words=3)
    assert docs.max_duplicate_line_fraction == 1.0
    assert docs.min_unique_word_fraction == 0.0
    assert docs.min_stop_words == 3
    assert QualityThresholds(preset="web") == QualityThresholds()
