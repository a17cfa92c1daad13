"""Human review: blinded A/B files out, filled-in scores validated and unblinded back in."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from llm_assets.evaluation.review import (
    REVIEW_CRITERIA,
    SCORE_COLUMNS,
    ReviewExport,
    ReviewFileError,
    build_review_export,
    import_reviews,
    parse_score,
    write_review_files,
)

ITEMS = 8


def make_export(seed: int = 0) -> ReviewExport:
    return build_review_export(
        pair_ids=[f"p{i}" for i in range(ITEMS)],
        conversations=[f"How do I do thing {i}?" for i in range(ITEMS)],
        references=[f"Do thing {i} like this." for i in range(ITEMS)],
        tuned_answers=[f"TUNED answer {i}" for i in range(ITEMS)],
        baseline_answers=[f"BASE answer {i}" for i in range(ITEMS)],
        baseline_label="base",
        seed=seed,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> None:
    columns = columns or list(rows[0])
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_export_is_blinded_shuffled_and_reproducible(tmp_path: Path) -> None:
    export = make_export()
    paths = write_review_files(export, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"golden-review-{export.export_id}.csv", f"golden-review-{export.export_id}.jsonl"]
    )
    rows = read_csv(paths["csv"])
    jsonl = [json.loads(line) for line in paths["jsonl"].read_text().splitlines()]
    assert [r["item_id"] for r in rows] == [r["item_id"] for r in jsonl]
    text = paths["csv"].read_text() + paths["jsonl"].read_text()
    assert "tuned" not in text.lower().replace("tuned answer", "") and "pair_id" not in text
    assert all(row[column] == "" for row in rows for column in [*SCORE_COLUMNS, "comment"])
    # Sides are random per row: the tuned answer is sometimes A, sometimes B.
    tuned_on_a = [row["answer_a"].startswith("TUNED") for row in rows]
    assert any(tuned_on_a) and not all(tuned_on_a)
    # Rows are shuffled, and the key unblinds each of them.
    assert [r["conversation"] for r in rows] != [f"How do I do thing {i}?" for i in range(ITEMS)]
    key = export.key_records()
    for row in rows:
        side = "a" if row["answer_a"].startswith("TUNED") else "b"
        assert key[row["item_id"]][side] == "tuned"
    again = make_export()
    assert again.export_id == export.export_id and again.key.equals(export.key)
    assert make_export(seed=1).export_id != export.export_id


def test_existing_files_of_an_export_are_never_overwritten(tmp_path: Path) -> None:
    export = make_export()
    paths = write_review_files(export, tmp_path)
    paths["csv"].write_text("reviewer's work")
    write_review_files(export, tmp_path)
    assert paths["csv"].read_text() == "reviewer's work"


def test_blank_files_give_an_empty_result(tmp_path: Path) -> None:
    export = make_export()
    write_review_files(export, tmp_path)
    result = import_reviews(tmp_path, export.export_id, export.key_records())
    assert result.reviews == 0 and result.scores == {} and result.files == []
    assert import_reviews(tmp_path / "missing", export.export_id, {}).reviews == 0


def test_filled_csv_and_jsonl_are_unblinded_into_means_per_model(tmp_path: Path) -> None:
    export = make_export()
    paths = write_review_files(export, tmp_path)
    rows = read_csv(paths["csv"])
    # Reviewer 1 (CSV, in place): the tuned answer gets 5s, the base answer 2s, on 3 rows.
    for row in rows[:3]:
        tuned_side = "a" if row["answer_a"].startswith("TUNED") else "b"
        base_side = "b" if tuned_side == "a" else "a"
        for criterion in REVIEW_CRITERIA:
            row[f"{criterion}_{tuned_side}"] = "5"
            row[f"{criterion}_{base_side}"] = "2"
        row["comment"] = "tuned is clearer"
    write_csv(paths["csv"], rows)
    # Reviewer 2 (a JSONL copy): accuracy only, tuned 3, base 4, on 1 row; numbers as JSON ints.
    lines = [json.loads(line) for line in paths["jsonl"].read_text().splitlines()]
    row = lines[5]
    tuned_side = "a" if row["answer_a"].startswith("TUNED") else "b"
    row[f"accuracy_{tuned_side}"] = 3
    row[f"accuracy_{'b' if tuned_side == 'a' else 'a'}"] = 4
    copy = tmp_path / f"golden-review-{export.export_id}.maria.jsonl"
    copy.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    result = import_reviews(tmp_path, export.export_id, export.key_records())
    assert result.reviews == 4 and result.comments == 3
    assert sorted(result.files) == sorted([paths["csv"].name, copy.name])
    assert result.scores["tuned"]["accuracy"] == pytest.approx((5 * 3 + 3) / 4)
    assert result.scores["base"]["accuracy"] == pytest.approx((2 * 3 + 4) / 4)
    assert result.scores["tuned"]["tone"] == 5.0 and result.counts["tuned"]["tone"] == 3
    assert result.as_dict()["scores"] == result.scores
    # Each answer each file scored, for the judge's calibration and reviewer agreement.
    assert len(result.answers) == 3 * 2 + 2
    from_copy = [a for a in result.answers if a["reviewer"] == copy.name]
    assert {a["model"]: a["scores"] for a in from_copy} == {
        "tuned": {"accuracy": 3},
        "base": {"accuracy": 4},
    }
    assert {a["item_id"] for a in from_copy} == {row["item_id"]}


def filled_csv(tmp_path: Path, export: ReviewExport, row: int, column: str, value: str) -> Path:
    path = write_review_files(export, tmp_path)["csv"]
    rows = read_csv(path)
    rows[row][column] = value
    write_csv(path, rows)
    return path


@pytest.mark.parametrize(
    ("value", "problem"),
    [("4.5", "not a whole number"), ("good", "not a whole number"), ("7", "out of range")],
)
def test_a_bad_score_names_file_row_and_column(tmp_path: Path, value: str, problem: str) -> None:
    export = make_export()
    path = filled_csv(tmp_path, export, 2, "tone_b", value)
    with pytest.raises(ReviewFileError) as raised:
        import_reviews(tmp_path, export.export_id, export.key_records())
    message = str(raised.value)
    assert str(path) in message and "row 3" in message and "column 'tone_b'" in message
    assert problem in message and repr(value) in message


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    export = make_export()
    path = write_review_files(export, tmp_path)["csv"]
    rows = read_csv(path)
    columns = [c for c in rows[0] if c != "helpfulness_a"]
    write_csv(path, rows, columns)
    with pytest.raises(ReviewFileError, match=r"column 'helpfulness_a' missing"):
        import_reviews(tmp_path, export.export_id, export.key_records())


def test_bad_jsonl_lines_are_named(tmp_path: Path) -> None:
    export = make_export()
    path = write_review_files(export, tmp_path)["jsonl"]
    lines = path.read_text().splitlines()
    row = json.loads(lines[1])
    row["accuracy_a"] = True
    row["item_id"] = "made-up"
    path.write_text("\n".join([lines[0], json.dumps(row), *lines[2:]]) + "\n")
    with pytest.raises(ReviewFileError) as raised:
        import_reviews(tmp_path, export.export_id, export.key_records())
    message = str(raised.value)
    assert "line 2, column 'accuracy_a'" in message
    assert "line 2, column 'item_id': 'made-up' is not an item" in message
    path.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(ReviewFileError, match="line 2 is not valid JSON"):
        import_reviews(tmp_path, export.export_id, export.key_records())


def test_parse_score() -> None:
    assert parse_score("") == (None, None) and parse_score(None) == (None, None)
    assert parse_score(" 3 ") == (3, None) and parse_score(5) == (5, None)
    assert parse_score("4.0") == (4, None)
    assert parse_score(0)[1] and parse_score("nan")[1] and parse_score(False)[1]
