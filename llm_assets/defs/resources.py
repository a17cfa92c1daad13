"""External systems as resources: the asset store, the artifact store, MLflow and the launcher
of training processes."""

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field, ValidationError

from llm_assets.contracts import Contract
from llm_assets.settings import PROJECT_ROOT, state_dir
from llm_assets.storage import (
    StoredTable,
    atomic_directory,
    atomic_file,
    move_into_place,
    point_link_at,
)

_FORMATS = (".parquet", ".hfds", ".json")
# Metadata key of an input that reads every partition of a partitioned upstream as a dict, even
# when there happens to be only one (`dg.AssetIn(metadata={READ_PARTITIONS: "all"})`).
READ_PARTITIONS = "llm_assets/read_partitions"


class LocalAssetIOManager(dg.ConfigurableIOManager):
    """Tables as Parquet, `datasets` objects as Arrow folders, contracts and reports as JSON
    (a contract is validated back into its class for a parameter annotated with it).

    A step that streams returns a `StoredTable` (a Parquet file it wrote in batches), which is
    moved into place; an input typed `StoredTable` gets the file to read in batches instead of a
    DataFrame in memory.

    Every write is atomic: a new version is written beside the old and swapped in by a rename,
    so a crash or a full disk leaves the previous version readable.
    """

    base_dir: str

    def _stem(self, key: dg.AssetKey) -> Path:
        return Path(self.base_dir).joinpath(*key.path)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        import json

        stem = self._stem(context.asset_key)
        if context.has_asset_partitions:
            stem = stem / context.asset_partition_key
        if isinstance(obj, StoredTable):
            move_into_place(obj.path, stem.with_suffix(".parquet"))
        elif isinstance(obj, pd.DataFrame):
            with atomic_file(stem.with_suffix(".parquet")) as temporary:
                obj.to_parquet(temporary, index=False)
        elif type(obj).__name__ in ("Dataset", "DatasetDict"):  # before dict: a DatasetDict is one
            versions = stem.with_suffix(".versions")
            version = versions / context.run_id
            with atomic_directory(version) as temporary:
                # An empty split saved with the default sharding writes no shard, and
                # `load_from_disk` then fails on it: give each empty split one (empty) shard.
                if type(obj).__name__ == "DatasetDict":
                    shards = {name: 1 if len(obj[name]) == 0 else None for name in obj}
                    obj.save_to_disk(str(temporary), num_shards=shards)
                else:
                    obj.save_to_disk(str(temporary), num_shards=1 if len(obj) == 0 else None)
            link = stem.with_suffix(".hfds")
            previous = link.resolve() if link.is_symlink() else None
            point_link_at(link, version)
            # Keep the version just replaced (readers may hold it open); drop older ones.
            for old in versions.iterdir():
                if old not in (version, previous) and not old.name.startswith("."):
                    shutil.rmtree(old, ignore_errors=True)
        elif isinstance(obj, Contract):
            with atomic_file(stem.with_suffix(".json")) as temporary:
                temporary.write_text(obj.model_dump_json(indent=2))
        elif isinstance(obj, dict):
            with atomic_file(stem.with_suffix(".json")) as temporary:
                temporary.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
        else:
            raise TypeError(
                f"{context.asset_key.to_user_string()}: cannot store {type(obj).__name__}; "
                "return a DataFrame, a datasets.Dataset/DatasetDict, a contract or a report dict"
            )

    def load_input(self, context: dg.InputContext) -> Any:
        stem = self._stem(context.asset_key)
        if context.has_asset_partitions:
            keys = sorted(context.asset_partition_keys)
            wants_all = (context.definition_metadata or {}).get(READ_PARTITIONS) == "all"
            if len(keys) == 1 and not wants_all:
                return self._load(context, stem / keys[0])
            # A partitioned upstream (feedback by quarter) read whole: the partitions that were
            # materialized, by key, in key order. A quarter never materialized holds nothing.
            return {
                key: self._load(context, stem / key)
                for key in keys
                if any(stem.joinpath(key).with_suffix(suffix).exists() for suffix in _FORMATS)
            }
        return self._load(context, stem)

    def _load(self, context: dg.InputContext, stem: Path) -> Any:
        import json

        if stem.with_suffix(".parquet").is_file():
            if _wants_stored_table(context):
                return StoredTable.open(stem.with_suffix(".parquet"))
            return pd.read_parquet(stem.with_suffix(".parquet"))
        if stem.with_suffix(".json").is_file():
            value = json.loads(stem.with_suffix(".json").read_text())
            contract = _wanted_contract(context)
            if contract is None:
                return value
            try:
                return contract.model_validate(value)
            except ValidationError as error:
                raise ValueError(
                    f"{context.asset_key.to_user_string()} ({stem.with_suffix('.json')}) is not a "
                    f"valid {contract.__name__}: {error}; materialize it again"
                ) from error
        if stem.with_suffix(".hfds").exists():
            from datasets import load_from_disk

            return load_from_disk(str(stem.with_suffix(".hfds").resolve()))
        raise FileNotFoundError(
            f"{context.asset_key.to_user_string()} has not been materialized into {self.base_dir} "
            "yet; materialize it first (make run SELECT='+<asset>')"
        )


def _wanted_contract(context: dg.InputContext) -> type[Contract] | None:
    """The contract class the reading asset's parameter is annotated with, if any."""
    try:
        wanted = context.dagster_type.typing_type
    except dg.DagsterInvariantViolationError:  # built by hand, as tests and notebooks do
        return None
    return wanted if isinstance(wanted, type) and issubclass(wanted, Contract) else None


def _wants_stored_table(context: dg.InputContext) -> bool:
    try:
        return context.dagster_type.typing_type is StoredTable
    except dg.DagsterInvariantViolationError:  # built by hand, as tests and notebooks do
        return False


class ArtifactStoreResource(dg.ConfigurableResource):
    """Folders of models, adapters and reports, one per run, written once and atomically."""

    base_dir: str

    @contextmanager
    def new_folder(self, asset_name: str, run_id: str) -> Iterator[Path]:
        with atomic_directory(Path(self.base_dir) / asset_name / run_id) as temporary:
            yield temporary

    def folder(self, asset_name: str, run_id: str) -> Path:
        return Path(self.base_dir) / asset_name / run_id

    def work_dir(self, asset_name: str, inputs_digest: str) -> Path:
        """A folder that survives failed runs, keyed by the inputs: where checkpoints go so a
        re-run on the same inputs resumes."""
        path = Path(self.base_dir) / "work" / asset_name / inputs_digest
        path.mkdir(parents=True, exist_ok=True)
        return path


def git_commit() -> str:
    """The code version of this checkout: commit id, with `-dirty` when files are modified."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking: `MLFLOW_TRACKING_URI` when set, else a SQLite store under the state dir.

    Every run is tagged with the Dagster run id, asset key, partition and git commit, so a user
    can walk from an MLflow run back to the exact data and code.
    """

    tracking_uri: str | None = None
    artifact_root: str | None = None
    experiment_name: str = "llm_assets"
    ui_url: str = "http://127.0.0.1:5000"

    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()

    def tracking(self) -> Any:
        """The `mlflow` module pointed at this store and experiment, for registry calls and
        reads outside a run."""
        return self._client_ready()

    def _client_ready(self) -> Any:
        import mlflow

        uri = self.resolved_tracking_uri()
        server = is_tracking_server(uri)
        if server:
            check_tracking_server(uri)
        mlflow.set_tracking_uri(uri)
        if mlflow.get_experiment_by_name(self.experiment_name) is None:
            # A tracking server stores artifacts where it was told to (--artifacts-destination);
            # a local store keeps them beside its database.
            artifacts = self.artifact_root or (
                None if server else (Path(state_dir()) / "mlflow" / "artifacts").as_uri()
            )
            mlflow.create_experiment(self.experiment_name, artifact_location=artifacts)
        mlflow.set_experiment(self.experiment_name)
        return mlflow

    @contextmanager
    def start_run(
        self, context: dg.AssetExecutionContext, run_name: str, run_id: str | None = None
    ) -> Iterator[Any]:
        """A new MLflow run for this asset (or, with `run_id`, an existing one reopened)."""
        mlflow = self._client_ready()
        tags = {
            "dagster.run_id": context.run.run_id,
            "dagster.asset_key": ",".join(
                sorted(key.to_user_string() for key in context.selected_asset_keys)
            ),
            "dagster.partition": context.partition_key if context.has_partition_key else "",
            "git_commit": git_commit(),
        }
        with mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name) as run:
            if run_id is None:
                mlflow.set_tags(tags)
            yield run

    def end_runs_of(self, dagster_run_id: str, status: str = "KILLED") -> list[str]:
        """End the MLflow runs of a Dagster run that are still RUNNING (their process was
        killed and could not end them) with `status`; returns their ids."""
        mlflow = self._client_ready()
        runs = mlflow.search_runs(
            filter_string=f"tags.`dagster.run_id` = '{dagster_run_id}' "
            "and attributes.status = 'RUNNING'",
            search_all_experiments=True,
            output_format="list",
        )
        client = mlflow.MlflowClient()
        for run in runs:
            client.set_terminated(run.info.run_id, status=status)
        return [run.info.run_id for run in runs]

    def _ui(self) -> str:
        """The MLflow UI: the tracking server itself, else `make mlflow`'s address."""
        uri = self.resolved_tracking_uri()
        return uri.rstrip("/") if is_tracking_server(uri) else self.ui_url

    def run_url(self, run: Any) -> str:
        return f"{self._ui()}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"

    def model_version_url(self, name: str, version: str) -> str:
        return f"{self._ui()}/#/models/{name}/versions/{version}"


def is_tracking_server(uri: str) -> bool:
    """An MLflow tracking server (HTTP), not a store this process opens itself."""
    return uri.startswith(("http://", "https://"))


class MlflowUnavailable(RuntimeError):
    """The MLflow tracking server does not answer."""


def check_tracking_server(uri: str, timeout_seconds: float = 5.0) -> None:
    """Raise `MlflowUnavailable` unless the server at `uri` answers its health check in time.

    The MLflow client retries an unreachable server for minutes, and a run that cannot record
    its results must fail before hours of GPU time, not after."""
    import urllib.error
    import urllib.request

    health = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout_seconds) as response:  # noqa: S310
            if response.status == 200:
                return
            problem = f"HTTP {response.status}"
    except (urllib.error.URLError, OSError) as error:
        problem = str(getattr(error, "reason", error))
    raise MlflowUnavailable(
        f"the MLflow tracking server at {uri} is unreachable ({problem}); nothing was started. "
        "Start it (make mlflow, or the team's server), or point MLFLOW_TRACKING_URI at one "
        "that answers"
    )


def default_tracking_uri() -> str:
    database = Path(state_dir()) / "mlflow" / "mlflow.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{database}"


class TrainingLauncherResource(dg.ConfigurableResource):
    """Runs a training command in a process of its own and talks to it through Dagster Pipes:
    its logs stream into the Dagster run, and what it reports becomes the materialization.

    Here the process is local (the step's machine); a Kubernetes Pipes client can take this
    resource's place with the same `run`. The process is started in its own process group, so
    a terminated Dagster run stops the launcher and every training process under it. A failed
    process raises `dg.Failure` with its exit code and the tail of its stderr.
    """

    stderr_tail_lines: int = Field(
        default=40, description="lines of the process's stderr quoted when it fails"
    )
    termination_timeout_seconds: float = Field(
        default=8.0,
        description="after SIGINT on an interrupted run, how long the training processes get "
        "to exit before SIGKILL (checkpoints are written atomically, so none is lost)",
    )

    def run(
        self,
        context: dg.AssetExecutionContext,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> dg.PipesClientCompletedInvocation:
        with dg.open_pipes_session(
            context=context,
            context_injector=dg.PipesTempFileContextInjector(),
            message_reader=dg.PipesTempFileMessageReader(),
            extras=extras,
        ) as session:
            process = subprocess.Popen(
                list(command),
                cwd=cwd or str(PROJECT_ROOT),
                env={
                    **os.environ,
                    "PYTHONUNBUFFERED": "1",
                    # The training stops itself if this process dies without stopping it.
                    "LLM_ASSETS_ORCHESTRATOR_PID": str(os.getpid()),
                    **(env or {}),
                    **session.get_bootstrap_env_vars(),
                },
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            tail: deque[str] = deque(maxlen=self.stderr_tail_lines)
            copier = threading.Thread(target=_copy_stderr, args=(process, tail), daemon=True)
            copier.start()
            try:
                process.wait()
            except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):
                context.log.info("[training] run interrupted: stopping the training processes")
                self._stop(process)
                raise
            finally:
                copier.join(timeout=10)
            if process.returncode != 0:
                quoted = "\n".join(tail) or "(nothing on stderr)"
                raise dg.Failure(
                    description=f"The training process failed with exit code "
                    f"{process.returncode}. Last lines of its stderr:\n{quoted}",
                    metadata={
                        "exit_code": process.returncode,
                        "command": dg.MetadataValue.text(" ".join(command)),
                        "stderr_tail": dg.MetadataValue.text(quoted),
                    },
                )
        return dg.PipesClientCompletedInvocation(session)

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        """SIGINT to the whole process group (the launcher and every training process), then,
        after `termination_timeout_seconds` or as soon as the launcher is gone, SIGKILL to
        whatever of the group is left: no training process outlives its run."""
        _signal_group(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=self.termination_timeout_seconds)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


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


def training_launcher_from_environment() -> Any:
    """`kubernetes` in LLM_ASSETS_TRAINING_LAUNCHER: a GPU pod per training; else a local
    process on the step's machine."""
    kind = os.environ.get("LLM_ASSETS_TRAINING_LAUNCHER", "local").strip().lower()
    if kind == "kubernetes":
        return KubernetesTrainingLauncherResource()
    if kind != "local":
        raise ValueError(f"LLM_ASSETS_TRAINING_LAUNCHER={kind!r}: use local or kubernetes")
    return TrainingLauncherResource()


def _signal_group(group: int, signum: signal.Signals) -> None:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        pass  # every process of the group has exited


def _copy_stderr(process: subprocess.Popen[bytes], tail: deque[str]) -> None:
    """Pass the process's stderr through to ours (Dagster captures it) and keep its tail."""
    assert process.stderr is not None
    for raw in iter(process.stderr.readline, b""):
        text = raw.decode("utf-8", errors="replace")
        sys.stderr.write(text)
        sys.stderr.flush()
        # Progress bars redraw with \r: keep the last state of a line, and not too much of it.
        line = text.rstrip().rsplit("\r", 1)[-1]
        if line.strip():
            tail.append(line[:1000])


class FeedbackStoreResource(dg.ConfigurableResource):
    """The exchanges `llm-assets serve` stored and the feedback on them (serving/store.py): the
    database whose SQLAlchemy URL is in the environment variable `url_env` (Postgres in
    production, the password kept out of config), else SQLite under the state folder."""

    url_env: str = "LLM_ASSETS_FEEDBACK_DB_URL"
    sqlite_path: str | None = None

    def url(self) -> str:
        from llm_assets.serving.store import database_url

        return database_url(self.url_env, Path(self.sqlite_path) if self.sqlite_path else None)

    def engine(self) -> Any:
        from llm_assets.serving.store import open_database

        return open_database(self.url())


def default_resources(
    root: Path | None = None,
    experiment_name: str = "llm_assets",
    tracking_uri: str | None = None,
    feedback_url_env: str = "LLM_ASSETS_FEEDBACK_DB_URL",
) -> dict[str, Any]:
    """Resources over one state folder (default: `state_dir()`); tests pass a temporary one,
    and `tracking_uri` when they track to an MLflow server. `feedback_url_env` is the profile's
    serving.database_url_env, so the pipeline reads the store the server writes."""
    root = root or state_dir()
    if tracking_uri is None and root != state_dir():
        tracking_uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
        (root / "mlflow").mkdir(parents=True, exist_ok=True)
    server = bool(tracking_uri and is_tracking_server(tracking_uri))
    return {
        "io_manager": LocalAssetIOManager(base_dir=str(root / "assets")),
        "artifacts": ArtifactStoreResource(base_dir=str(root / "artifacts")),
        "mlflow": MlflowResource(
            tracking_uri=tracking_uri,
            artifact_root=None if server else (root / "mlflow" / "artifacts").as_uri(),
            experiment_name=experiment_name,
        ),
        "training_launcher": training_launcher_from_environment(),
        "feedback_store": FeedbackStoreResource(
            url_env=feedback_url_env,
            sqlite_path=None if root == state_dir() else str(root / "serving" / "feedback.db"),
        ),
    }
