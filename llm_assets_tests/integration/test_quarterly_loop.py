"""A quarter end to end: feedback is stored, the schedule ticks, the job re-fine-tunes, and the
new version is registered but not promoted because it does not beat the champion."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from llm_assets.contracts import Adapter, EvalReport
from llm_assets.defs import build_definitions
from llm_assets.serving.store import ExchangeStore, Redactor
from llm_assets.settings import PromotionCriteria

from ..conftest import served_exchange
from .conftest import MaterializedGraph

# It re-trains in the session graph's state: a new challenger, a new quarter of feedback.
pytestmark = [pytest.mark.slow, pytest.mark.advances_session_graph]

CORRECTION = "Open Settings, choose Vaults, then Restore deleted vault within 30 days."
LIKED = "Aurora Sync retries a failed upload three times before it reports an error."


def _store_a_quarter_of_feedback(graph: MaterializedGraph) -> None:
    engine = graph.resources["feedback_store"].engine()
    store = ExchangeStore(engine, Redactor.from_cleaning(graph.profile.cleaning))
    asked = [
        ("q-corrected", "How do I bring back a vault I deleted last week?", "Try again."),
        ("q-liked", "Does the sync client retry failed uploads?", LIKED),
        ("q-disliked", "Why is my sync slow, jane.doe@example.com asks?", "It is the moon."),
    ]
    for number, (response_id, question, answer) in enumerate(asked):
        store.record_exchange(
            served_exchange(
                response_id,
                question,
                answer,
                model="llm_assets-support-assistant",
                model_version="1",
                created_at=datetime(2026, 8, 3 + number, 9, tzinfo=UTC),
            )
        )
    feedback_day = datetime(2026, 8, 20, tzinfo=UTC)
    store.record_feedback(
        "q-corrected", thumbs="down", corrected_answer=CORRECTION, created_at=feedback_day
    )
    store.record_feedback("q-liked", thumbs="up", rating=5, created_at=feedback_day)
    store.record_feedback("q-disliked", thumbs="down", rating=1, created_at=feedback_day)
    # Given after the quarter ended: next quarter's, not this one's.
    store.record_feedback("q-liked", thumbs="down", created_at=datetime(2026, 10, 2, tzinfo=UTC))


def test_a_quarter_of_feedback_retrains_registers_and_does_not_promote_a_worse_model(
    graph: MaterializedGraph,
) -> None:
    _store_a_quarter_of_feedback(graph)
    # The challenger must beat the champion by a margin no twelve-step model reaches.
    criteria = PromotionCriteria(
        rouge_l_margin=0.5, min_redteam_pass_rate=0.0, perplexity_below_base=False
    )
    # The quarter's four KTO rows are enough here: the challenger is preference-tuned.
    preference = graph.profile.preference.model_copy(
        update={"min_rows": 4, "max_steps": 6, "save_steps": 3, "logging_steps": 1}
    )
    profile = graph.profile.model_copy(
        update={
            "use_case": graph.profile.use_case.model_copy(update={"criteria": criteria}),
            "preference": preference,
        }
    )
    defs = build_definitions(profile, resources=graph.resources)
    mlflow = defs.resources["mlflow"].tracking()  # type: ignore[index]
    name = profile.use_case.registered_model_name
    client = mlflow.MlflowClient()
    versions_before = {v.version for v in client.search_model_versions(f"name='{name}'")}
    champion_before = client.get_registered_model(name).aliases.get("champion")

    schedule = defs.resolve_schedule_def("quarterly_refinetune_schedule")
    context = dg.build_schedule_context(
        instance=graph.instance, scheduled_execution_time=datetime(2026, 10, 1, tzinfo=UTC)
    )
    [request] = schedule.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2026-07-01"

    result = defs.resolve_job_def("quarterly_refinetune").execute_in_process(
        instance=graph.instance, partition_key=request.partition_key, tags=request.tags
    )
    assert result.success

    feedback = defs.load_asset_value(
        "feedback_records", instance=graph.instance, partition_key="2026-07-01"
    )
    verdicts = dict(zip(feedback["record_id"], feedback["read_error"].fillna("kept"), strict=True))
    assert verdicts == {
        "feedback:q-corrected@2026-07-01": "kept",
        "feedback:q-liked@2026-07-01": "kept",
        "feedback:q-disliked@2026-07-01": "feedback.disliked",
    }
    assert "jane.doe@example.com" not in feedback.to_json()

    # What went wrong is kept too, as preference data: the disliked answer is a negative row,
    # the correction a pair over the served answer.
    preferences = defs.load_asset_value(
        "preference_dataset", instance=graph.instance, partition_key="2026-07-01"
    )
    kto = preferences["kto"].to_pandas().set_index("row_id")["label"].to_dict()
    assert kto == {
        "q-corrected:correction": True,
        "q-corrected:corrected": False,
        "q-liked:liked": True,
        "q-disliked:disliked": False,
    }
    [pair] = preferences["dpo"].to_list()
    assert (
        pair["chosen"][0]["content"] == CORRECTION
        and pair["rejected"][0]["content"] == "Try again."
    )
    assert pair["prompt"][0] == {"role": "system", "content": graph.profile.datasets.system_prompt}
    assert "jane.doe@example.com" not in repr(preferences["kto"].to_list())
    preference_ledger = defs.load_asset_value(
        "preference_ledger", instance=graph.instance, partition_key="2026-07-01"
    )
    assert len(preference_ledger) == 3

    ledger = defs.load_asset_value("cleaning_ledger", instance=graph.instance)
    from_feedback = ledger[ledger["source"] == "feedback"].set_index("record_id")
    assert from_feedback.loc["feedback:q-disliked@2026-07-01", "action"] == "dropped"
    assert from_feedback.loc["feedback:q-disliked@2026-07-01", "reason"] == "feedback.disliked"
    corpus = defs.load_asset_value("cleaned_corpus", instance=graph.instance)
    assert CORRECTION in set(corpus["response"])

    pairs = defs.load_asset_value("sft_pairs", instance=graph.instance)
    assert CORRECTION in set(pairs["output"]) and LIKED in set(pairs["output"])

    # Preference tuning ran over the new SFT model, and evaluation judged it against that
    # SFT model, its base and the champion.
    sft = Adapter.model_validate(defs.load_asset_value("qlora_adapter", instance=graph.instance))
    challenger = Adapter.model_validate(
        defs.load_asset_value("preference_adapter", instance=graph.instance)
    )
    assert challenger.preference_method == "kto" and challenger.global_step == 6
    assert challenger.original_base_model_path == sft.base_model_path
    assert challenger.base_model_path != sft.base_model_path
    report = EvalReport.model_validate(
        defs.load_asset_value("eval_report", instance=graph.instance)
    )
    assert report.golden_rougeL_sft is not None and "rougeL_vs_sft" in report.deltas
    assert report.adapter_path == challenger.path

    versions_after = {v.version for v in client.search_model_versions(f"name='{name}'")}
    [new_version] = versions_after - versions_before
    aliases = client.get_registered_model(name).aliases
    assert aliases["challenger"] == new_version
    assert aliases.get("champion") == champion_before != new_version
    champion = defs.load_asset_value("champion_model", instance=graph.instance)
    assert champion["promoted"] is False
    assert champion["failed_criteria"] == ["rouge_l"]
