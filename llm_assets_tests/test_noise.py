import pandas as pd

from llm_assets.cleaning.noise import (
    FrequentLines,
    boilerplate_lines,
    line_document_counts,
    remove_boilerplate_lines,
    remove_fillers,
    remove_markup,
    remove_noise,
    remove_quoted_replies,
    remove_signature,
)

QUOTED_REPLY = (
    "Do you have an aarch64 build? I have a new ARM laptop running Pop!_OS 22.04.\n\n"
    "On Fri, Mar 20, 2026 at 5:03 AM, Aurora Support <support@aurorasync.example> wrote:\n"
    "> Hello Daniel,\n> We have marked this ticket as solved.\n>\n> Kind regards,\n"
    "> The Aurora Sync team"
)


def test_remove_markup_turns_tags_and_entities_into_text() -> None:
    html = "<p>Hi,<br/>Hope you're well. Found a conflict folder.</p>&nbsp;"
    assert remove_markup(html) == "Hi,\nHope you're well. Found a conflict folder."
    assert remove_markup("Tom &amp; Jerry&nbsp; say hi.<br>") == "Tom & Jerry say hi."


def test_remove_markup_keeps_cli_placeholders() -> None:
    answer = 'Run `aurora restore "<path>" --version <id>` to restore one.'
    assert remove_markup(answer) == answer


def test_remove_quoted_replies_cuts_the_quoted_message() -> None:
    assert remove_quoted_replies(QUOTED_REPLY) == (
        "Do you have an aarch64 build? I have a new ARM laptop running Pop!_OS 22.04."
    )


def test_remove_quoted_replies_keeps_markdown_block_quotes() -> None:
    doc = "## Vault\n\n> **Note:** the vault key never leaves your device.\n\nUnlock it first."
    assert remove_quoted_replies(doc) == doc


def test_remove_signature_handles_the_common_styles() -> None:
    dash = "Can I make a shared folder inside the Vault?\n\n--\nCamille Fischer | DevOps | +1 212"
    iphone = "Sync is stuck at 7 files.\n\nThanks,\nKofi Osei\nSent from my iPhone"
    regards = (
        "Can you apply the discount now?\n\nKind regards,\nSara Mensah\n"
        "IT Admin, Brightwave Media\nM: +49 30 5550 8270"
    )
    assert remove_signature(dash) == "Can I make a shared folder inside the Vault?"
    assert remove_signature(iphone) == "Sync is stuck at 7 files."
    assert remove_signature(regards) == "Can you apply the discount now?"


def test_remove_signature_keeps_a_thanks_inside_the_message() -> None:
    text = "Thanks!\nThe restore worked, but the shared folder still shows the old name."
    assert remove_signature(text) == text


def test_remove_fillers_keeps_words_that_contain_them() -> None:
    assert remove_fillers("Um so basically users get a signature error.") == (
        "Users get a signature error."
    )
    assert remove_fillers("So, like, you know, since installing I get an error.") == (
        "Since installing I get an error."
    )
    assert remove_fillers("I deleted folders and, uh, they disappeared, you know.") == (
        "I deleted folders and they disappeared."
    )
    clean = "My umbrella account user can't sync. We will let you know, uh-oh aside."
    assert remove_fillers(clean) == clean


def test_boilerplate_lines_are_found_per_source_and_removed() -> None:
    pages = [
        f"# Page {n}\n\nHow to set up feature {n} on your devices.\n\n```\naurora status\n```\n"
        "Was this page helpful?\n© 2026 Nimbus Labs. All rights reserved."
        for n in range(12)
    ]
    common = boilerplate_lines(pages, min_fraction=0.3, min_documents=10)
    assert common == {"was this page helpful?", "© 2026 nimbus labs. all rights reserved."}
    assert remove_boilerplate_lines(pages[0], common) == (
        "# Page 0\n\nHow to set up feature 0 on your devices.\n\n```\naurora status\n```"
    )


def test_remove_noise_counts_the_records_each_step_changed() -> None:
    records = pd.DataFrame(
        {
            "record_id": ["T-1", "T-2", "T-3", "T-4"],
            "source": "tickets",
            "text": [QUOTED_REPLY, "Uh, sync is slow.<br>", "Sync is slow.", None],
        }
    )
    texts, counts = remove_noise(records)
    assert texts[1] == "Sync is slow."
    assert pd.isna(texts[3])
    assert counts == {
        "noise.markup": 1,
        "noise.quoted_reply": 1,
        "noise.signature": 0,
        "noise.filler": 1,
        "noise.boilerplate": 0,
    }


def test_signature_with_odd_spacing_is_removed_like_the_original() -> None:
    from llm_assets.cleaning.noise import remove_signature

    original = "The upload fails every night.\nBest regards,\nJane Doe\nIT Admin"
    resent = "The upload fails every night.\r\nBest  regards, \r\nJane Doe\r\nIT Admin"
    assert remove_signature(original) == "The upload fails every night."
    assert remove_signature(resent).rstrip() == "The upload fails every night."


def test_frequent_lines_finds_lines_common_to_many_documents_in_bounded_memory() -> None:
    frequent = FrequentLines(capacity=50)
    for batch in range(20):
        texts = [f"unique line {batch} {n} here\nShared footer line" for n in range(100)]
        frequent.add(line_document_counts(texts), len(texts))
    assert len(frequent.counts) <= 50
    assert frequent.boilerplate(0.3, 10) == {"shared footer line"}
    assert frequent.counts["shared footer line"] > 2000 - 2000 / 50
