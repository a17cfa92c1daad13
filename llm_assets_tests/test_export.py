from pathlib import Path

import pytest
import yaml

from llm_assets.contracts import Adapter
from llm_assets.export.merge import CannotMerge, merge_adapter, model_card
from llm_assets.export.quantize import exports_answering_worse


def _row(fmt: str, perplexity: float, rouge_l: float, merged: tuple[float, float]) -> dict:
    return {
        "format": fmt,
        "perplexity": perplexity,
        "perplexity_delta": perplexity - merged[0],
        "golden_rouge_l": rouge_l,
        "golden_rouge_l_delta": rouge_l - merged[1],
    }


def test_exports_answering_worse_names_the_format_and_the_metric() -> None:
    merged = (10.0, 0.40)
    rows = [
        _row("merged-fp32", *merged, merged),
        _row("torchao-int8", 10.2, 0.40, merged),  # within 10% and 0.05
        _row("quanto-int4", 11.5, 0.41, merged),  # perplexity +15%
        _row("bnb-nf4", 10.1, 0.30, merged),  # ROUGE-L -0.10
    ]

    problems = exports_answering_worse(rows, max_perplexity_increase=0.10, max_rouge_l_drop=0.05)

    assert len(problems) == 2
    assert problems[0].startswith("quanto-int4: perplexity 11.500")
    assert problems[1].startswith("bnb-nf4: golden ROUGE-L 0.300")


def test_exports_within_tolerance_pass() -> None:
    merged = (10.0, 0.40)
    rows = [_row("merged-fp32", *merged, merged), _row("bnb-nf4", 10.9, 0.36, merged)]

    assert exports_answering_worse(rows, 0.10, 0.05) == []


def test_model_card_has_hub_metadata_and_its_origin() -> None:
    adapter = Adapter(
        path="/adapters/a",
        method="qlora",
        base_model_path="/models/mistral",
        base_model_id="mistralai/Mistral-7B-v0.3",
        mlflow_run_id="abc123",
        global_step=10,
        train_loss=1.2,
        weights_digest="d1",
    )

    card = model_card(adapter, "apache-2.0", "support-assistant")

    front_matter = yaml.safe_load(card.split("---")[1])
    assert front_matter["base_model"] == "mistralai/Mistral-7B-v0.3"
    assert front_matter["license"] == "apache-2.0"
    assert "abc123" in card
    assert "`qlora` adapter" in card and "Adapter weights digest: `d1`" in card


@pytest.mark.parametrize("method", ["prompt_tuning", "p_tuning"])
def test_prompt_adapters_cannot_be_merged_and_say_why(method: str, tmp_path: Path) -> None:
    with pytest.raises(CannotMerge, match="virtual prompt tokens"):
        merge_adapter("base", "adapter", method, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
