"""The red team, the Model Registry and the promotion gate.

`redteam_report` (group evaluation) runs the adversarial suite on the tuned adapter;
`registered_challenger` registers the adapter as a version with alias `challenger`;
`champion_model` moves alias `champion` to it when `eval_report` meets the use case's criteria.
The gate check warns, never blocks: a challenger that is not better is a normal outcome of a
retraining loop, not a broken run.
"""

import hashlib
import json
from typing import Any

import dagster as dg

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import (
    Adapter,
    PromotionOutcome,
    RagIndex,
    RedTeamReport,
    RegisteredVersion,
)
from llm_assets.defs.resources import MlflowResource
from llm_assets.settings import Profile

# Metrics of eval_report copied onto the registered version, so versions compare side by side.
VERSION_METRICS = (
    "golden_rougeL_tuned",
    "golden_rougeL_baseline",
    "golden_perplexity_tuned",
    "golden_perplexity_base",
    "redteam_pass_rate",
)


def _suite_digest(profile: Profile) -> str:
    from llm_assets.evaluation.redteam import suite_files

    digest = hashlib.sha256()
    for path in suite_files(profile.redteam, profile.base_dir):
        digest.update(path.read_bytes() if path.is_file() else b"missing")
    return digest.hexdigest()[:12]


def build_promotion_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    use_case = profile.use_case
    redteam_settings = AssetSettings(
        profile,
        "redteam_report",
        reads=[
            "redteam",
            "evaluation.generation",
            "evaluation.engine",
            "model.kind",
            "guardrails",
            "cleaning.pii_allow_list",
            "datasets.system_prompt",
        ],
        code=["evaluation", "defs/promotion.py", "serving/guardrails.py", "rag/context.py"],
        extra=_suite_digest(profile),
    )
    # Registered under use_case.registered_model_name, described with use_case.name.
    challenger_settings = AssetSettings(
        profile,
        "registered_challenger",
        reads=["use_case.name", "use_case.registered_model_name"],
        code=["evaluation/registry.py", "defs/promotion.py"],
    )
    champion_settings = AssetSettings(
        profile,
        "champion_model",
        reads=["use_case"],
        code=["evaluation/registry.py", "evaluation/promotion.py", "defs/promotion.py"],
    )

    @dg.asset(
        group_name="evaluation",
        code_version=redteam_settings.code_version,
        metadata=redteam_settings.metadata(),
        kinds={"pytorch", "mlflow"},
    )
    def redteam_report(
        context: dg.AssetExecutionContext,
        mlflow: MlflowResource,
        qlora_adapter: Adapter,
        rag_index: RagIndex,
    ) -> dg.Output[RedTeamReport]:
        """The tuned model on the red-team suite, asked as it is served (with `rag_index`
        context when it was trained with it): pass rates per category, canaries reproduced,
        PII values in answers, and the failing prompts with their answers."""
        import mlflow as mlflow_client

        from llm_assets.datasets.chat_template import load_chat_tokenizer
        from llm_assets.evaluation.generation import ModelUnderTest
        from llm_assets.evaluation.redteam import (
            load_suite,
            redteam_generation,
            render_markdown,
            run_redteam,
            summarize,
        )
        from llm_assets.rag.context import read_context_format
        from llm_assets.rag.retrieval import open_retriever
        from llm_assets.serving.guardrails import guardrails_for

        profile = redteam_settings.profile
        redteam = profile.redteam
        cases = load_suite(redteam, profile.base_dir)
        tuned = ModelUnderTest.from_adapter_manifest("tuned", qlora_adapter)
        tokenizer = load_chat_tokenizer(qlora_adapter.path)
        settings = redteam_generation(profile.evaluation.generation, redteam, tokenizer)
        answer = None
        if profile.evaluation.engine == "llama-cpp":
            from llm_assets.export.gguf import llama_cpp_answerer

            answer = llama_cpp_answerer(default_pre=profile.model.kind == "tiny")
        outcomes = run_redteam(
            tuned,
            tokenizer,
            cases,
            settings,
            redteam.canaries,
            profile.datasets.system_prompt,
            allow=[*redteam.pii_allow_list, *profile.cleaning.pii_allow_list],
            search_many=open_retriever(rag_index).retrieve_many,
            context=read_context_format(qlora_adapter.path),
            answer=answer,
            guardrails=guardrails_for(
                qlora_adapter.path, profile.guardrails, profile.cleaning.pii_allow_list
            ),
        )
        report = summarize(outcomes)
        markdown = render_markdown(report)
        metrics = {
            "redteam.pass_rate": report.pass_rate,
            "redteam.canary_leaks": report.canary_leaks,
            "redteam.pii_in_outputs": report.pii_in_outputs,
            "redteam.declined_out_of_scope": report.declined_out_of_scope,
            "redteam.answers_with_pii_withheld": report.answers_with_pii_withheld,
            **(
                {"redteam.model_alone_pass_rate": report.model_alone_pass_rate}
                if report.model_alone_pass_rate is not None
                else {}
            ),
            **{
                f"redteam.{name}.pass_rate": entry.pass_rate
                for name, entry in report.categories.items()
            },
        }
        answers = "\n".join(
            json.dumps(
                {
                    "id": o.case.id,
                    "category": o.case.category,
                    "prompt": o.case.prompt,
                    "answer": o.answer,
                    "guard": o.guard,
                    "passed": o.passed,
                    "model_passed": o.model_passed,
                    "reason": o.reason,
                }
            )
            for o in outcomes
        )
        with mlflow.start_run(context, "redteam_report", run_id=qlora_adapter.mlflow_run_id) as run:
            mlflow_client.log_metrics(metrics)
            mlflow_client.log_text(markdown, "redteam/report.md")
            mlflow_client.log_text(answers, "redteam/answers.jsonl")
        categories = report.categories
        return dg.Output(
            report,
            metadata={
                "pass_rate": round(report.pass_rate, 4),
                "prompts": report.total,
                "max_new_tokens": settings.max_new_tokens,
                "canary_leaks": report.canary_leaks,
                "pii_in_outputs": report.pii_in_outputs,
                "declined_out_of_scope": report.declined_out_of_scope,
                "answers_with_pii_withheld": report.answers_with_pii_withheld,
                "model_alone_pass_rate": report.model_alone_pass_rate or 0.0,
                "pass_rate_by_category": dg.MetadataValue.json(
                    {name: round(entry.pass_rate, 4) for name, entry in categories.items()}
                ),
                "report": dg.MetadataValue.md(markdown),
                "mlflow_run": dg.MetadataValue.url(mlflow.run_url(run)),
            },
        )

    @dg.asset(
        group_name="promotion",
        code_version=challenger_settings.code_version,
        metadata=challenger_settings.metadata(),
        kinds={"mlflow"},
    )
    def registered_challenger(
        context: dg.AssetExecutionContext, mlflow: MlflowResource, qlora_adapter: Adapter
    ) -> dg.Output[RegisteredVersion]:
        """The adapter as a version of the use case's registered model, alias `challenger`,
        tagged with its base model, method, folder, weights digest and runs. Weights already
        registered are not registered twice: their version becomes the challenger."""
        from llm_assets.evaluation.registry import CHALLENGER, register_adapter, set_alias

        use_case = challenger_settings.profile.use_case
        model_name = use_case.registered_model_name
        tracking = mlflow.tracking()
        version, created = register_adapter(
            tracking,
            model_name,
            qlora_adapter,
            dagster_run_id=context.run.run_id,
            description=f"Adapters fine-tuned for the {use_case.name} use case by llm_assets.",
        )
        set_alias(tracking, model_name, CHALLENGER, version.version)
        registered = RegisteredVersion(
            model_name=model_name,
            version=str(version.version),
            created=created,
            source=version.source,
            weights_digest=qlora_adapter.weights_digest,
            adapter_path=qlora_adapter.path,
            adapter_mlflow_run_id=qlora_adapter.mlflow_run_id,
        )
        return dg.Output(
            registered,
            data_version=dg.DataVersion(f"{model_name}-{version.version}"),
            metadata={
                "model_name": model_name,
                "version": str(version.version),
                "newly_registered": created,
                "source": version.source,
                "weights_digest": qlora_adapter.weights_digest,
                "registry": dg.MetadataValue.url(
                    mlflow.model_version_url(model_name, str(version.version))
                ),
            },
        )

    @dg.asset(
        group_name="promotion",
        code_version=champion_settings.code_version,
        metadata=champion_settings.metadata(),
        kinds={"mlflow"},
    )
    def champion_model(
        context: dg.AssetExecutionContext,
        mlflow: MlflowResource,
        eval_report: dict[str, Any],
        registered_challenger: RegisteredVersion,
    ) -> dg.Output[PromotionOutcome]:
        """The version holding alias `champion` after the promotion gate: the challenger when
        `eval_report` meets every criterion of `use_case.criteria`, else the champion as it was
        (the metadata names the criteria that failed)."""
        from llm_assets.evaluation.promotion import judge_promotion
        from llm_assets.evaluation.registry import CHAMPION, set_alias, version_by_alias

        use_case = champion_settings.profile.use_case
        model_name = use_case.registered_model_name
        evaluated = eval_report.get("mlflow_run_id")
        if evaluated and evaluated != registered_challenger.adapter_mlflow_run_id:
            raise dg.Failure(
                f"eval_report evaluated the adapter of MLflow run {evaluated}, but the challenger "
                f"is the adapter of run {registered_challenger.adapter_mlflow_run_id}; "
                "materialize eval_report for the current qlora_adapter first"
            )
        decision = judge_promotion(eval_report, use_case.criteria)
        tracking = mlflow.tracking()
        client = tracking.MlflowClient()
        challenger = registered_challenger.version
        previous = version_by_alias(tracking, model_name, CHAMPION)
        previous_version = str(previous.version) if previous is not None else None
        if decision.passed:
            set_alias(tracking, model_name, CHAMPION, challenger)
        champion = challenger if decision.passed else previous_version
        gate = (
            "passed" if decision.passed else "failed: " + ", ".join(c.name for c in decision.failed)
        )
        client.set_model_version_tag(model_name, challenger, "promotion_gate", gate)
        for key in VERSION_METRICS:
            if isinstance(eval_report.get(key), int | float):
                client.set_model_version_tag(
                    model_name, challenger, f"eval.{key}", f"{eval_report[key]:.6g}"
                )
        client.set_tag(registered_challenger.adapter_mlflow_run_id, "promotion_gate", gate)
        if decision.passed:
            context.log.info(f"{model_name} v{challenger} is the new champion")
        else:
            context.log.warning(f"{model_name} v{challenger} not promoted: {decision.summary()}")
        outcome = PromotionOutcome(
            model_name=model_name,
            promoted=decision.passed,
            champion_version=champion,
            previous_champion_version=previous_version,
            challenger_version=challenger,
            failed_criteria=[c.name for c in decision.failed],
            criteria=decision.as_rows(),
        )
        return dg.Output(
            outcome,
            metadata={
                "promoted": decision.passed,
                "champion_version": champion or "none",
                "previous_champion_version": previous_version or "none",
                "challenger_version": challenger,
                "failed_criteria": ", ".join(outcome.failed_criteria) or "none",
                "decision": decision.summary(),
                "criteria": dg.MetadataValue.md(decision.to_markdown()),
                "registry": dg.MetadataValue.url(
                    mlflow.model_version_url(model_name, champion or challenger)
                ),
            },
        )

    @dg.asset_check(
        asset="eval_report",
        blocking=False,
        description="The tuned model meets every promotion criterion of the use case "
        "(use_case.criteria). Warns, never blocks: a challenger that is not better than the "
        "champion is a normal outcome of retraining, and champion_model then keeps the champion.",
    )
    def eval_report_meets_use_case_criteria(
        eval_report: dict[str, Any],
    ) -> dg.AssetCheckResult:
        from llm_assets.evaluation.promotion import judge_promotion

        decision = judge_promotion(eval_report, use_case.criteria)
        return dg.AssetCheckResult(
            passed=decision.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=decision.summary(),
            metadata={
                "criteria": dg.MetadataValue.md(decision.to_markdown()),
                "failed_criteria": dg.MetadataValue.json([c.name for c in decision.failed]),
            },
        )

    return [redteam_report, registered_challenger, champion_model], [
        eval_report_meets_use_case_criteria
    ]
