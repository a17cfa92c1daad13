"""Red team, registry and promotion on the session graph (see conftest)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from llm_assets.defs import build_definitions
from llm_assets.evaluation.registry import CHALLENGER, CHAMPION, version_by_alias
from llm_assets.settings import PromotionCriteria

from .conftest import MaterializedGraph

pytestmark = pytest.mark.slow


def test_canaries_are_planted_in_train_and_probed_by_the_red_team(
    graph: MaterializedGraph,
) -> None:
    canary = graph.profile.redteam.canaries[0]
    splits = graph.value("sft_dataset")
    planted = [output for output in splits["train"]["output"] if canary in output]
    assert len(planted) == graph.metadata("sft_dataset")["canary_rows_planted"] == 6
    assert not any(canary in output for output in splits["validation"]["output"])
    assert not graph.value("golden_set")["output"].str.contains(canary, regex=False).any()

    report = graph.value("redteam_report")
    assert set(report["categories"]) == {
        "pii_extraction",
        "prompt_injection",
        "jailbreak",
        "off_topic",
        "canary_extraction",
    }
    assert all(
        10 <= entry["total"]
        for name, entry in report["categories"].items()
        if name != "canary_extraction"
    )
    assert 0.0 <= report["pass_rate"] <= 1.0
    assert "| canary_extraction |" in graph.metadata("redteam_report")["report"]


def test_a_model_that_memorized_a_canary_fails_the_red_team(
    graph: MaterializedGraph, tmp_path: Path
) -> None:
    """A hundred steps or so on the planted rows alone make the tiny base model recite the canary;
    the red team must catch it, and must not blame the base model, which never saw it."""
    from llm_assets.datasets.canaries import canary_pairs
    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.generation import ModelUnderTest
    from llm_assets.evaluation.redteam import (
        canary_cases,
        redteam_generation,
        run_redteam,
        summarize,
    )

    profile = graph.profile
    canary = profile.redteam.canaries[0]
    base = graph.value("base_model")["path"]
    template = graph.value("chat_template")["template"]
    memorized = tmp_path / "memorized"
    _fine_tune(base, template, canary_pairs([canary], 1, profile.datasets.system_prompt), memorized)

    tokenizer = load_chat_tokenizer(str(memorized))
    generation = redteam_generation(profile.evaluation.generation, profile.redteam, tokenizer)

    def red_team(model: ModelUnderTest) -> dict[str, Any]:
        outcomes = run_redteam(
            model,
            tokenizer,
            canary_cases(),
            generation,
            [canary],
            profile.datasets.system_prompt,
        )
        return summarize(outcomes).model_dump()

    leaked = red_team(ModelUnderTest("tuned", base, str(memorized), method="full"))
    assert leaked["canary_leaks"] > 0
    assert leaked["categories"]["canary_extraction"]["pass_rate"] < 1.0
    assert canary in leaked["failures"][0]["output"]
    assert leaked["failures"][0]["reason"].startswith("reproduced a planted canary")

    control = red_team(ModelUnderTest("base", base))
    assert control["canary_leaks"] == 0


def _fine_tune(base: str, template: str, rows: Any, folder: Path, max_steps: int = 200) -> None:
    """Full fine-tuning on `rows` until they are memorized (loss below 0.05, about 80 steps on
    the tiny model): the cheapest model that leaks."""
    import torch
    from transformers import AutoModelForCausalLM

    from llm_assets.datasets.chat_template import load_chat_tokenizer, render_chat

    tokenizer = load_chat_tokenizer(base, template)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    texts = [render_chat(tokenizer, messages) for messages in rows["messages"]]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    torch.manual_seed(0)
    model.train()
    for _ in range(max_steps):
        loss = model(**batch, labels=labels).loss
        if loss.item() < 0.05:
            break
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def test_graph_registers_the_adapter_with_its_base_and_runs_the_gate(
    graph: MaterializedGraph,
) -> None:
    adapter = graph.value("qlora_adapter")
    challenger = graph.value("registered_challenger")
    tracking = graph.defs.resources["mlflow"].tracking()
    version = version_by_alias(tracking, challenger["model_name"], CHALLENGER)
    assert version is not None and str(version.version) == challenger["version"]
    assert version.tags["base_model_path"] == adapter["base_model_path"]
    assert version.tags["weights_digest"] == adapter["weights_digest"]
    assert version.tags["method"] == adapter["method"]
    # The tiny profile's criteria let any model through: the first one becomes champion.
    champion = graph.value("champion_model")
    assert champion["promoted"] and champion["champion_version"] == challenger["version"]
    checks = {
        event.event_specific_data.check_name: event.event_specific_data
        for event in graph.result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert checks["eval_report_meets_use_case_criteria"].passed


@pytest.fixture
def gate_model_name(graph: MaterializedGraph) -> str:
    """A registered model of the test's own, in the session's MLflow (SQLite or the server): it
    starts without a champion, and the session's aliases never move under other tests."""
    return f"{graph.profile.use_case.registered_model_name}-gate-{uuid.uuid4().hex[:6]}"


def _run_gate(
    graph: MaterializedGraph, model_name: str, criteria: PromotionCriteria
) -> dg.ExecuteInProcessResult:
    use_case = graph.profile.use_case.model_copy(
        update={"criteria": criteria, "registered_model_name": model_name}
    )
    profile = graph.profile.model_copy(update={"use_case": use_case})
    defs = build_definitions(profile, graph.resources)
    return dg.materialize(
        list(defs.assets or []),
        selection=["registered_challenger", "champion_model"],
        instance=graph.instance,
        resources=graph.resources,
    )


@pytest.mark.advances_session_graph
def test_a_challenger_that_fails_a_criterion_is_not_promoted(
    graph: MaterializedGraph, gate_model_name: str
) -> None:
    impossible = PromotionCriteria(rouge_l_margin=1.5, min_redteam_pass_rate=0.0)
    result = _run_gate(graph, gate_model_name, impossible)
    value = result.output_for_node("champion_model")
    assert not value.promoted and value.champion_version is None
    assert "rouge_l" in value.failed_criteria
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("champion_model")
    ]
    metadata = event.materialization.metadata
    assert "rouge_l" in metadata["failed_criteria"].value
    assert "| rouge_l |" in metadata["criteria"].value and "| NO |" in metadata["criteria"].value
    tracking = graph.resources["mlflow"].tracking()
    assert version_by_alias(tracking, gate_model_name, CHAMPION) is None
    assert version_by_alias(tracking, gate_model_name, CHALLENGER) is not None


@pytest.mark.advances_session_graph
def test_a_challenger_that_meets_the_criteria_becomes_champion_once(
    graph: MaterializedGraph, gate_model_name: str
) -> None:
    from llm_assets.evaluation.registry import find_champion, versions_with_digest

    lenient = PromotionCriteria(
        rouge_l_margin=-1.0,
        min_redteam_pass_rate=0.0,
        min_redteam_category_pass_rate=0.0,
        perplexity_below_base=False,
    )
    result = _run_gate(graph, gate_model_name, lenient)
    challenger = result.output_for_node("registered_challenger")
    assert challenger.created
    value = result.output_for_node("champion_model")
    assert value.promoted and value.champion_version == challenger.version

    again = _run_gate(graph, gate_model_name, lenient).output_for_node("registered_challenger")
    assert not again.created and again.version == challenger.version

    tracking = graph.resources["mlflow"].tracking()
    champion = find_champion(tracking, gate_model_name)
    adapter = graph.value("qlora_adapter")
    assert champion is not None and champion["path"] == adapter["path"]
    assert len(versions_with_digest(tracking, gate_model_name, adapter["weights_digest"])) == 1
    version = version_by_alias(tracking, gate_model_name, CHAMPION)
    assert version.tags["promotion_gate"] == "passed"
