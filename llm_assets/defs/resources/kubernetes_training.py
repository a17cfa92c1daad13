"""The training step in a Kubernetes pod of its own, started from deploy/k8s/training-pod.yaml."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from llm_assets.defs.resources.training_launcher import TrainingLauncherResource
from llm_assets.settings import PROJECT_ROOT


class KubernetesTrainingLauncherResource(TrainingLauncherResource):
    """The training step in a GPU pod of its own, through Dagster Pipes' Kubernetes client: the
    same `accelerate launch` command as the local launcher, in the same image, so the paths in
    it (the interpreter, conf/accelerate, the spec on the shared volume) hold in the pod too.
    The pod spec (GPU request, node selector, volumes, secrets) is deploy/k8s/training-pod.yaml.
    Selected with LLM_ASSETS_TRAINING_LAUNCHER=kubernetes (deploy/helm/values.yaml sets it)."""

    pod_template: str = Field(
        default=str(PROJECT_ROOT / "deploy" / "k8s" / "training-pod.yaml"),
        description="a Pod manifest whose metadata and spec every training pod starts from",
    )
    image: str | None = Field(
        default=None, description="the training image; default: the template's container image"
    )
    namespace: str | None = Field(default=None, description="default: the template's namespace")
    load_incluster_config: bool = True

    def _pod_template(self) -> dict[str, Any]:
        """What every training pod starts from: image, base metadata and spec."""
        import yaml

        template = yaml.safe_load(Path(self.pod_template).read_text(encoding="utf-8"))
        return {
            "image": self.image or template["spec"]["containers"][0]["image"],
            "base_pod_meta": template["metadata"],
            "base_pod_spec": template["spec"],
        }

    def pod_body(self, pod_name: str, command: Sequence[str], env: Mapping[str, str]) -> Any:
        """The pod the Pipes client creates for `command` (a kubernetes V1Pod)."""
        from dagster_k8s.pipes import build_pod_body

        return build_pod_body(
            pod_name=pod_name, command=list(command), env_vars=dict(env), **self._pod_template()
        )

    def run(
        self,
        context: dg.AssetExecutionContext,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> dg.PipesClientCompletedInvocation:
        from dagster_k8s import PipesK8sClient

        pod = self._pod_template()
        return PipesK8sClient(load_incluster_config=self.load_incluster_config).run(
            context=context,
            command=list(command),
            namespace=self.namespace or pod["base_pod_meta"].get("namespace"),
            env=dict(env or {}),
            extras=extras,
            **pod,
        )
