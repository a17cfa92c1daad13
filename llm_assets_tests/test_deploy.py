"""Every manifest in deploy/ is valid for what reads it: Kubernetes objects against the
Kubernetes API models, Helm values against the Dagster config schemas they turn into."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _model(kind_path: str, data: Any) -> Any:
    """`data` read into the Kubernetes client's model `kind_path` (e.g. 'V1Pod'); required fields
    and types are enforced by the models."""
    from kubernetes.client import ApiClient

    return ApiClient()._ApiClient__deserialize(data, kind_path)  # type: ignore[attr-defined]


def _round_trip(kind_path: str, data: Any) -> Any:
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(_model(kind_path, data))


def _model_name(document: dict[str, Any]) -> str:
    version = document["apiVersion"].split("/")[-1]
    return f"{version[0].upper()}{version[1:]}{document['kind']}"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_a_valid_kubernetes_object_with_no_unknown_field(path: Path) -> None:
    for document in _documents(path):
        # A misspelled field is silently dropped by the model: the round trip must lose nothing.
        assert _round_trip(_model_name(document), document) == document


def test_every_secret_and_volume_claim_referenced_is_declared() -> None:
    declared = {
        (doc["kind"], doc["metadata"]["name"]) for path in MANIFESTS for doc in _documents(path)
    }
    text = "\n".join(p.read_text() for p in [*MANIFESTS, DEPLOY / "helm" / "values.yaml"])
    for claim in set(re.findall(r"claimName:\s*([\w-]+)", text)):
        assert ("PersistentVolumeClaim", claim) in declared, claim
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    secrets = {values["global"]["postgresqlSecretName"]}
    secrets |= set(re.findall(r"secretRef:\s*\{name:\s*([\w-]+)\}", text))
    secrets |= set(re.findall(r"secretKeyRef:\s*\{name:\s*([\w-]+)", text))
    secrets |= {s["name"] for s in values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]}
    for secret in secrets:
        assert ("Secret", secret) in declared, secret


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _validate(config_type: Any, value: dict[str, Any]) -> None:
    from dagster._config import validate_config

    result = validate_config(config_type, value)
    assert result.success, [error.message for error in result.errors or []]


def test_helm_run_launcher_and_queue_are_valid_dagster_config() -> None:
    from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
    from dagster_k8s import K8sRunLauncher

    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    # The chart writes these itself from its own settings.
    chart_filled = {
        "instance_config_map": "dagster-instance",
        "dagster_home": "/opt/dagster/dagster_home",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
        "service_account_name": "dagster",
    }
    # As the chart's instance template writes them: names of secrets as strings, and the run's
    # Kubernetes config keys in snake case.
    launcher_config = {_snake(k): v for k, v in launcher.items()} | chart_filled
    launcher_config["env_secrets"] = [secret["name"] for secret in launcher["envSecrets"]]
    launcher_config["run_k8s_config"] = {_snake(k): v for k, v in launcher["runK8sConfig"].items()}
    _model("V1Container", {"name": "run", **launcher["runK8sConfig"]["containerConfig"]})
    _validate(K8sRunLauncher.config_type(), launcher_config)
    for volume in launcher["volumes"]:
        _model("V1Volume", volume)
    for mount in launcher["volumeMounts"]:
        _model("V1VolumeMount", mount)

    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    _validate(QueuedRunCoordinator.config_type(), {_snake(k): v for k, v in queue.items()})
    assert {"key": "llm_assets/gpu", "value": "true", "limit": 1} in queue["tagConcurrencyLimits"]


def test_helm_code_location_runs_this_package_with_state_on_the_shared_volume() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    [location] = values["dagster-user-deployments"]["deployments"]
    assert location["dagsterApiGrpcArgs"] == ["--module-name", "llm_assets.definitions"]
    env = {item["name"]: item["value"] for item in location["env"]}
    assert env["LLM_ASSETS_STATE_DIR"].startswith(location["volumeMounts"][0]["mountPath"])
    assert (PROJECT_ROOT / env["LLM_ASSETS_PROFILE"].removeprefix("/opt/llm_assets/")).is_file()
    for item in location["env"]:
        _model("V1EnvVar", item)


def test_training_pod_becomes_a_valid_pod_through_the_pipes_client() -> None:
    from dagster_k8s.pipes import build_pod_body

    [template] = _documents(DEPLOY / "k8s" / "training-pod.yaml")
    body = build_pod_body(
        pod_name="dagster-training-1",
        image="registry.example.com/llm-assets:0.1.0",
        command=["accelerate", "launch", "-m", "llm_assets.training.run"],
        env_vars={"DAGSTER_PIPES_CONTEXT": "x", "DAGSTER_PIPES_MESSAGES": "y"},
        base_pod_meta=template["metadata"],
        base_pod_spec=template["spec"],
    )
    from kubernetes.client import ApiClient

    pod = _model("V1Pod", ApiClient().sanitize_for_serialization(body))
    [container] = pod.spec.containers
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert {v.name for v in pod.spec.volumes} == {"data", "shm"}
    assert {"DAGSTER_PIPES_CONTEXT", "MLFLOW_TRACKING_URI"} <= {e.name for e in container.env}


def test_kubernetes_launcher_runs_the_local_training_command_in_a_gpu_pod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubernetes.client import ApiClient

    from llm_assets.defs.resources import (
        KubernetesTrainingLauncherResource,
        training_launcher_from_environment,
    )

    monkeypatch.setenv("LLM_ASSETS_TRAINING_LAUNCHER", "kubernetes")
    launcher = training_launcher_from_environment()
    assert isinstance(launcher, KubernetesTrainingLauncherResource)
    command = [
        "/usr/local/bin/python",
        "-m",
        "accelerate.commands.launch",
        "--quiet",
        "-m",
        "llm_assets.training.fine_tune",
        "--spec",
        "/data/llm_assets/work/x/spec.json",
    ]

    body = launcher.pod_body("dagster-training-2", command, {"DAGSTER_PIPES_CONTEXT": "c"})

    pod = _model("V1Pod", ApiClient().sanitize_for_serialization(body))
    assert pod.metadata.namespace == "llm-assets"
    assert pod.spec.containers[0].command == command
    assert pod.spec.containers[0].resources.requests["nvidia.com/gpu"] == "1"
    monkeypatch.setenv("LLM_ASSETS_TRAINING_LAUNCHER", "slurm")
    with pytest.raises(ValueError, match="local or kubernetes"):
        training_launcher_from_environment()


def test_a_profile_can_run_each_step_as_a_kubernetes_job(tmp_path: Path) -> None:
    from llm_assets.defs import executor_for
    from llm_assets.settings import load_profile

    profile = tmp_path / "k8s.yaml"
    profile.write_text(
        "sources: [{name: docs, kind: documents, path: docs/*.md}]\n"
        "execution: {executor: k8s, max_concurrent: 4}\n"
    )

    executor = executor_for(load_profile(profile))

    assert executor.name == "k8s"
