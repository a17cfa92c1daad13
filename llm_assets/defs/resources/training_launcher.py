"""The launcher of training processes: a local process group, spoken to through Dagster Pipes."""

import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from llm_assets.settings import PROJECT_ROOT


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
