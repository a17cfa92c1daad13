"""Every source kind at once, through sources and cleaning, with the real Dagster assets."""

import json
import sqlite3
from pathlib import Path

import dagster as dg
import pytest

from llm_assets.defs import build_assets_and_checks
from llm_assets.defs.resources import default_resources
from llm_assets.settings import load_profile

from ..test_sources_documents import make_pdf
from ..test_sources_git import git

pytestmark = pytest.mark.slow

PROFILE = """
sources:
  - {name: docs, kind: documents, path: docs/*}
  - {name: tickets, kind: jsonl, path: tickets.jsonl, id_field: id,
     template: "{subject}\\n\\n{body}", response_field: answer}
  - {name: exports, kind: csv, path: exports.csv, id_field: id, text_field: question,
     response_field: answer}
  - {name: faq, kind: instructions, path: faq.json}
  - {name: kb, kind: sql, url: "sqlite:///${KB_DB}", query: "SELECT id, q, a FROM kb",
     id_field: id, text_field: q, response_field: a}
  - {name: code, kind: git, path: repo, include: ["**/*"]}
cleaning:
  forget_file: forget.txt
  batch_size: 3  # several batches: raw tables written in parts, two cleaning workers
"""


def _write_inputs(folder: Path) -> None:
    (folder / "docs").mkdir()
    (folder / "docs" / "guide.md").write_text(
        "# Selective sync\n\nChoose which folders stay on this computer in Preferences, then "
        "Folders. Unticked folders stay in the cloud and free local disk space.\n"
    )
    (folder / "docs" / "manual.pdf").write_bytes(
        make_pdf(["LAN sync copies blocks between computers", "on the same network first."])
    )
    (folder / "docs" / "broken.pdf").write_bytes(b"%PDF-1.7 this is not a real pdf")
    tickets = [
        {
            "id": "T1",
            "subject": "Sync stuck",
            "body": "Sync stops at 99 percent on my laptop "
            "since the update. Mail me at jane@corp.example",
            "answer": "Restart the client.",
        },
        {
            "id": "T2",
            "subject": "Sync stuck",
            "body": "Sync stops at 99 percent on my laptop "
            "since the update. Mail me at jane@corp.example",
            "answer": "Restart the client.",
        },
        {
            "id": "T3",
            "subject": "Forget me",
            "body": "Please delete everything about my account and my tickets from your systems.",
            "answer": "Done.",
        },
    ]
    lines = [json.dumps(ticket) for ticket in tickets] + ['{"id": "T4", "body": "cut']
    (folder / "tickets.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "exports.csv").write_text(
        "id,question,answer\nE1,How do I share a folder with a colleague?,"
        "Right-click the folder and choose Share.\nE2,,empty question\n"
    )
    (folder / "faq.json").write_text(
        json.dumps(
            [
                {
                    "instruction": "What does the vault do?",
                    "input": "",
                    "output": "It encrypts files end to end with a key only you hold.",
                },
                {"instruction": "", "input": "", "output": "no instruction"},
            ]
        )
    )
    with sqlite3.connect(folder / "kb.sqlite") as db:
        db.execute("CREATE TABLE kb (id TEXT, q TEXT, a TEXT)")
        db.execute(
            "INSERT INTO kb VALUES ('K1', 'Which ports does LAN sync use on the network?', "
            "'LAN sync listens on TCP and UDP port 17500.')"
        )
    repo = folder / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("# Client\n\nThe desktop client of the sync service.\n")
    (repo / "sync.py").write_text("def retry_upload(blocks):\n    return [b for b in blocks]\n")
    (repo / "logo.png").write_bytes(b"\x89PNG\x00\x01binary")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    (folder / "forget.txt").write_text("# deletion request 2026-11-20\ntickets/T3\n")


def test_every_source_kind_is_read_cleaned_and_accounted_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_inputs(tmp_path)
    monkeypatch.setenv("KB_DB", str(tmp_path / "kb.sqlite"))
    (tmp_path / "profile.yaml").write_text(PROFILE)
    profile = load_profile(tmp_path / "profile.yaml")
    assets, checks = build_assets_and_checks(profile)
    resources = default_resources(tmp_path / "state")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*assets, *checks],
            instance=instance,
            resources=resources,
            selection=dg.AssetSelection.groups("sources", "cleaning"),
        )
        assert result.success
        ledger = resources["io_manager"].load_input(
            dg.build_input_context(asset_key=dg.AssetKey("cleaning_ledger"))
        )
    by_source = ledger.groupby("source").size().to_dict()
    assert by_source == {"docs": 3, "tickets": 4, "exports": 2, "faq": 2, "kb": 1, "code": 3}
    reasons = dict(zip(ledger["record_id"], ledger["reason"], strict=True))
    assert reasons["docs:broken.pdf"] == "source.corrupt_pdf"
    assert reasons["T2"] == "dedup.exact"
    assert reasons["T3"] == "forget.request"
    assert reasons["tickets:tickets.jsonl#L4"] == "source.malformed_json"
    kept = set(ledger.loc[ledger["action"] == "kept", "record_id"])
    assert {"guide.md", "manual.pdf", "T1", "E1", "K1", "README.md", "sync.py"} <= kept
    assert any("logo.png" in record_id for record_id in ledger["record_id"])
