"""Group `training`: the base model and the fine-tuned adapter, tracked in MLflow."""

import hashlib
import json
import shlex
import shutil
import sys
from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import Adapter, BaseModelFolder, ChatTemplate
from llm_assets.defs.resources import (
    ArtifactStoreResource,
    MlflowResource,
    TrainingLauncherResource,
)
from llm_assets.rag.context import ContextFormat, write_context_format
from llm_assets.serving.guardrails import answered_question_relevance, write_scope_calibration
from llm_assets.settings import Profile, TrainingConfig
from llm_assets.storage import folder_digest, frame_digest

CHECK_ROWS = 16


def build_training_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    code = ["training", "defs/training.py"]
    base_settings = AssetSettings(
        profile, "base_model", reads=["model", "training.seed"], code=code
    )
    adapter_settings = AssetSettings(
        profile,
        "qlora_adapter",
        reads=["training", "datasets.max_length", "datasets.retrieval"],
        runtime=[f"training.{name}" for name in TrainingConfig.LAUNCH_FIELDS],
        code=code,
    )

    @dg.asset(
        group_name="training",
        code_version=base_settings.code_version,
        metadata=base_settings.metadata(),
        kinds={"pytorch", "huggingface"},
    )
    def base_model(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        cleaned_corpus: pd.DataFrame,
    ) -> dg.Output[BaseModelFolder]:
        """The model fine-tuning starts from: a tiny Llama pre-trained on the corpus, a real
        model loaded with `from_pretrained` from a local path or the Hugging Face cache, or a
        GGUF file (a path or an installed package's) dequantized into a model folder."""
        from llm_assets.training.base_model import (
            build_tiny_base_model,
            count_parameters,
            resolve_pretrained,
            weights_identity,
        )

        profile = base_settings.profile
        model_config = profile.model
        made: dict[str, dict[str, Any]] = {}
        if model_config.kind == "pretrained":
            path = resolve_pretrained(model_config)
        elif model_config.kind == "gguf":
            from llm_assets.training.gguf import convert_gguf_to_folder, resolve_gguf_file

            gguf_path = resolve_gguf_file(model_config.id_or_path, profile.base_dir)
            with artifacts.new_folder("base_model", context.run.run_id) as folder:
                conversion = convert_gguf_to_folder(gguf_path, folder)
            path = str(artifacts.folder("base_model", context.run.run_id))
            made["gguf"] = conversion.__dict__
        else:
            texts = [
                f"{text}\n\n{response}" if isinstance(response, str) else text
                for text, response in zip(
                    cleaned_corpus["text"], cleaned_corpus["response"], strict=True
                )
            ]
            with artifacts.new_folder("base_model", context.run.run_id) as folder:
                summary = build_tiny_base_model(
                    texts, model_config.tiny, folder, seed=profile.training.seed
                )
            path = str(artifacts.folder("base_model", context.run.run_id))
            made["pretrain"] = summary.__dict__
        folder_made = BaseModelFolder(
            kind=model_config.kind,
            model_id=model_config.id_or_path,
            revision=model_config.revision,
            license=model_config.license,
            path=path,
            parameters=count_parameters(path),
            weights_digest=weights_identity(path),
            **made,
        )
        return dg.Output(
            folder_made,
            data_version=dg.DataVersion(folder_made.weights_digest),
            metadata={
                "path": dg.MetadataValue.path(path),
                "parameters": folder_made.parameters or "unknown (not safetensors)",
                "model_id": model_config.id_or_path,
                "license": model_config.license,
                **{f"pretrain_{k}": v for k, v in folder_made.pretrain.items()},
                **{f"gguf_{k}": v for k, v in folder_made.gguf.items()},
            },
        )

    @dg.asset(
        group_name="training",
        code_version=adapter_settings.code_version,
        metadata=adapter_settings.metadata(),
        kinds={"pytorch", "mlflow"},
        pool="gpu",
    )
    def qlora_adapter(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        training_launcher: TrainingLauncherResource,
        base_model: BaseModelFolder,
        sft_dataset: Any,
        chat_template: ChatTemplate,
    ) -> dg.Output[Adapter]:
        """The fine-tuned adapter (QLoRA by default; LoRA, full or a prompt method by
        `training.method`), with the tokenizer and the chat template saved with the dataset.
        Trained in a process of its own (`accelerate launch`, through Dagster Pipes), which logs
        to this asset's MLflow run and logs the adapter as an MLflow model."""
        import mlflow as mlflow_client
        import torch

        from llm_assets.training.launch import (
            TrainingSpec,
            resolve_accelerate_config,
            save_dataset_once,
            training_command,
        )

        profile = adapter_settings.profile
        training = profile.training
        accelerate_config = resolve_accelerate_config(
            training.accelerate_config, torch.cuda.is_available(), profile.base_dir
        )
        train_frame = sft_dataset["train"].to_pandas()
        validation_frame = sft_dataset["validation"].to_pandas()
        data_digests = {
            "train": frame_digest(train_frame),
            "validation": frame_digest(validation_frame),
        }
        settings = training.model_dump(mode="json")
        learned = {k: v for k, v in settings.items() if k not in training.LAUNCH_FIELDS}
        inputs_digest = hashlib.sha256(
            json.dumps(
                [base_model.weights_digest, data_digests, learned, chat_template.digest],
                sort_keys=True,
            ).encode()
        ).hexdigest()[:16]
        work_dir = artifacts.work_dir("qlora_adapter", inputs_digest)
        dataset_dir = save_dataset_once(sft_dataset, work_dir / "dataset")

        with mlflow.start_run(context, run_name=f"qlora_adapter-{context.run.run_id[:8]}") as run:
            mlflow_client.log_params(
                {
                    **{f"training.{k}": v for k, v in settings.items()},
                    "training.accelerate_config_file": accelerate_config.name,
                    "model.id_or_path": base_model.model_id,
                    "model.revision": base_model.revision or "",
                    "model.weights_digest": base_model.weights_digest,
                    "model.license": base_model.license,
                    "model.gguf_sha256": base_model.gguf.get("gguf_sha256", ""),
                    "data.train_digest": data_digests["train"],
                    "data.validation_digest": data_digests["validation"],
                    "data.max_length": profile.datasets.max_length,
                    "data.chat_template_digest": chat_template.digest,
                    "data.chat_template_origin": chat_template.origin,
                }
            )
            for name, frame in (("train", train_frame), ("validation", validation_frame)):
                dataset = mlflow_client.data.from_pandas(
                    frame[["pair_id", "instruction", "input", "output"]],
                    name=f"sft_dataset.{name}",
                    digest=data_digests[name],
                )
                mlflow_client.log_input(dataset, context="training" if name == "train" else "eval")

            spec_path = TrainingSpec(
                base_model_path=base_model.path,
                base_model_id=base_model.model_id,
                dataset_dir=str(dataset_dir),
                work_dir=str(work_dir),
                training=settings,
                max_length=profile.datasets.max_length,
                chat_template=chat_template.template,
                mlflow_tracking_uri=mlflow.resolved_tracking_uri(),
                mlflow_run_id=run.info.run_id,
            ).write(work_dir / "spec.json")
            command = training_command(
                sys.executable, accelerate_config, spec_path, training.num_processes
            )
            context.log.info(f"training process: {shlex.join(command)}")
            invocation = training_launcher.run(context=context, command=command)
            # As the training process typed them (the history is Markdown), for the asset page;
            # plain values for the manifest.
            reported_metadata = invocation.get_materialize_result().metadata or {}
            reported: dict[str, Any] = {
                key: getattr(value, "value", value) for key, value in reported_metadata.items()
            }
            retrieval = profile.datasets.retrieval
            with artifacts.new_folder("qlora_adapter", context.run.run_id) as folder:
                shutil.copytree(work_dir / "final", folder, dirs_exist_ok=True)
                if retrieval.enabled:
                    write_context_format(
                        folder, ContextFormat(retrieval.k, retrieval.max_context_chars)
                    )
                    write_scope_calibration(folder, answered_question_relevance(train_frame))
            path = artifacts.folder("qlora_adapter", context.run.run_id)
            run_url = mlflow.run_url(run)

        resumed_from = reported["resumed_from_checkpoint"]
        adapter = Adapter(
            path=str(path),
            method=reported["method"],
            base_model_path=base_model.path,
            base_model_id=base_model.model_id,
            mlflow_run_id=run.info.run_id,
            mlflow_model_uri=reported["mlflow_model_uri"],
            global_step=int(reported["steps"]),
            train_loss=float(reported["train_loss"]),
            resumed_from=None if resumed_from == "none" else resumed_from,
            retrieval=retrieval.enabled,
            weights_digest=folder_digest(path),
        )
        return dg.Output(
            adapter,
            data_version=dg.DataVersion(adapter.weights_digest),
            metadata={
                **reported_metadata,
                "path": dg.MetadataValue.path(str(path)),
                "mlflow_run": dg.MetadataValue.url(run_url),
                "mlflow_run_id": run.info.run_id,
                "accelerate_config": dg.MetadataValue.path(str(accelerate_config)),
            },
        )

    @dg.asset_check(
        asset=qlora_adapter,
        additional_ins={"sft_dataset": dg.AssetIn("sft_dataset"), "chat_template": dg.AssetIn()},
        blocking=True,
        description="The tokenizer saved with the adapter renders and tokenizes validation "
        "conversations exactly as the base tokenizer with the dataset's chat template does.",
    )
    def qlora_adapter_keeps_training_chat_template(
        qlora_adapter: Adapter, sft_dataset: Any, chat_template: ChatTemplate
    ) -> dg.AssetCheckResult:
        from transformers import AutoTokenizer

        from llm_assets.datasets.chat_template import load_chat_tokenizer, template_differences

        rows = [list(map(dict, m)) for m in sft_dataset["validation"]["messages"][:CHECK_ROWS]]
        problems = template_differences(
            load_chat_tokenizer(qlora_adapter.base_model_path, chat_template.template),
            AutoTokenizer.from_pretrained(qlora_adapter.path),
            rows,
        )
        return dg.AssetCheckResult(
            passed=not problems,
            description=f"{len(rows)} conversations compared; {len(problems)} differences",
            metadata={"differences": dg.MetadataValue.json(problems[:20])},
        )

    return [base_model, qlora_adapter], [qlora_adapter_keeps_training_chat_template]
