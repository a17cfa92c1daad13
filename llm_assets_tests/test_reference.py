from pathlib import Path

from llm_assets.defs.reference import reference_pages
from llm_assets.settings import DEFAULT_PROFILE_PATH

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference"


def test_reference_pages_match_the_code() -> None:
    for name, text in reference_pages(DEFAULT_PROFILE_PATH).items():
        committed = (REFERENCE / name).read_text(encoding="utf-8")
        assert committed == text, (
            f"docs/reference/{name} is out of date: run `llm-assets reference`"
        )


def test_the_assets_page_names_what_each_asset_reads() -> None:
    assets = reference_pages(DEFAULT_PROFILE_PATH)["assets.md"]
    section = assets.split("### `qlora_adapter`", 1)[1].split("###", 1)[0]
    assert "`training`" in section and "`datasets.max_length`" in section
    assert "not versioned: `training.accelerate_config`" in section
