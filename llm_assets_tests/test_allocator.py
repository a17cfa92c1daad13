"""The malloc a process runs on (training's, materialize's): resolved on the machine that runs
it, preloaded by restarting the process in place, swapped where a parent preloaded another,
never a changed result."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_assets import allocator
from llm_assets.allocator import (
    AllocatorUnavailable,
    allocator_library,
    preload_environment,
)
from llm_assets_tests.conftest import TINY_PROFILE

RESTARTING_SCRIPT = """
import os, sys
from llm_assets.allocator import allocator_in_use, restart_with_allocator
print("before", os.getpid(), allocator_in_use(), flush=True)
restart_with_allocator(sys.argv[1])
print("after", os.getpid(), allocator_in_use(), sys.argv[1:])
"""


def _installed(name: str) -> bool:
    try:
        return allocator_library(name)[1] is not None  # type: ignore[arg-type]
    except AllocatorUnavailable:
        return False


@pytest.mark.parametrize("name", ["tcmalloc", "jemalloc"])
def test_a_restarted_process_runs_on_the_allocator_with_its_pid_and_arguments(name: str) -> None:
    if not _installed(name):
        pytest.skip(f"{name} is not installed here (CI installs tcmalloc)")
    done = subprocess.run(
        [sys.executable, "-c", RESTARTING_SCRIPT, name, "--spec", "x.json"],
        capture_output=True,
        text=True,
        check=True,
    )
    first, restarted, after = done.stdout.splitlines()
    _, pid, was = first.split(" ", 2)
    assert was == "system"
    # The same process (pid) runs the script again from the top, once, on the allocator.
    assert restarted == f"before {pid} {name}"
    assert after == f"after {pid} {name} ['{name}', '--spec', 'x.json']"


def test_the_system_allocator_restarts_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-c", RESTARTING_SCRIPT, "system"],
        capture_output=True,
        text=True,
        check=True,
    )
    before, after = done.stdout.splitlines()
    assert before.startswith("before ") and before.endswith(" system")
    assert after.startswith("after ") and after.endswith(" system ['system']")


@pytest.mark.parametrize("name", ["tcmalloc", "jemalloc"])
def test_a_child_of_a_preloaded_parent_swaps_the_allocator_for_the_one_it_is_set_to(
    name: str,
) -> None:
    """`llm-assets materialize` runs on execution.allocator and its training process inherits
    that preload: training.allocator (system, or another library) must still win."""
    if not (_installed("tcmalloc") and _installed("jemalloc")):
        pytest.skip("needs both tcmalloc and jemalloc installed")
    parent = {"tcmalloc": "jemalloc", "jemalloc": "tcmalloc"}[name]
    inherited = preload_environment(os.environ, allocator_library(parent)[1])  # type: ignore[arg-type]
    for wanted in (name, "system"):
        done = subprocess.run(
            [sys.executable, "-c", RESTARTING_SCRIPT, wanted],
            capture_output=True,
            text=True,
            check=True,
            env=inherited,
        )
        lines = done.stdout.splitlines()
        assert lines[0].endswith(f" {parent}")
        assert lines[-1].split(" ")[2] == wanted


def test_a_named_allocator_that_is_not_installed_says_which_package_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda name: None)

    with pytest.raises(AllocatorUnavailable, match="apt-get install libjemalloc2"):
        allocator_library("jemalloc")
    with pytest.raises(AllocatorUnavailable, match="or set execution.allocator to auto"):
        allocator_library("tcmalloc", "execution.allocator")
    assert allocator_library("auto") == ("system", None)
    assert allocator_library("system") == ("system", None)


def test_auto_prefers_tcmalloc_then_jemalloc(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = {"jemalloc": "libjemalloc.so.2"}
    monkeypatch.setattr(allocator.ctypes.util, "find_library", installed.get)
    assert allocator_library("auto") == ("jemalloc", "libjemalloc.so.2")
    installed["tcmalloc_minimal"] = "libtcmalloc_minimal.so.4"
    assert allocator_library("auto") == ("tcmalloc", "libtcmalloc_minimal.so.4")


def test_the_preload_goes_first_and_keeps_what_was_preloaded() -> None:
    environment = {"PATH": "/bin", "LD_PRELOAD": "/opt/lib/libfaketime.so.1"}

    preloaded = preload_environment(environment, "libtcmalloc_minimal.so.4")

    assert preloaded == {
        "PATH": "/bin",
        "LD_PRELOAD": "libtcmalloc_minimal.so.4 /opt/lib/libfaketime.so.1",
    }
    assert preload_environment(preloaded, "libtcmalloc_minimal.so.4") is None
    full_path = {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"}
    assert preload_environment(full_path, "libtcmalloc_minimal.so.4") is None


def test_another_allocator_replaces_the_preloaded_one_and_system_removes_it() -> None:
    inherited = {"LD_PRELOAD": "libtcmalloc_minimal.so.4 /opt/lib/libfaketime.so.1", "A": "1"}

    assert preload_environment(inherited, "libjemalloc.so.2") == {
        "LD_PRELOAD": "libjemalloc.so.2 /opt/lib/libfaketime.so.1",
        "A": "1",
    }
    assert preload_environment(inherited, None) == {
        "LD_PRELOAD": "/opt/lib/libfaketime.so.1",
        "A": "1",
    }
    assert preload_environment({"LD_PRELOAD": "libtcmalloc_minimal.so.4", "A": "1"}, None) == {
        "A": "1"
    }
    assert preload_environment({"A": "1"}, None) is None


def test_the_cli_names_the_library_materialize_preloads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from llm_assets.cli import main

    profile = tmp_path / "system.yaml"
    profile.write_text(
        (TINY_PROFILE.read_text(encoding="utf-8") + "\nexecution:\n  allocator: system\n"),
        encoding="utf-8",
    )

    assert main(["allocator", "--profile", str(TINY_PROFILE)]) == 0
    assert capsys.readouterr().out.strip() == (allocator_library("auto")[1] or "")
    assert main(["allocator", "--profile", str(profile)]) == 0
    assert capsys.readouterr().out == "\n"


def test_the_allocator_does_not_key_the_training_work_folder() -> None:
    from llm_assets.contracts import BaseModelFolder, ChatTemplate
    from llm_assets.settings import TrainingConfig
    from llm_assets.training.adapter_run import training_inputs_digest

    base = BaseModelFolder.model_construct(weights_digest="w")
    template = ChatTemplate.model_construct(digest="t")

    def digest(**settings: object) -> str:
        return training_inputs_digest(
            TrainingConfig(**settings),
            base,
            {"train": "d"},
            template,  # type: ignore[arg-type]
        )

    assert digest(allocator="system") == digest(allocator="tcmalloc") == digest()
    assert digest(learning_rate=1e-3) != digest()


def test_materialize_started_as_a_program_runs_its_steps_on_the_profile_allocator(
    tmp_path: Path,
) -> None:
    """`llm-assets materialize` (here `python -m llm_assets.cli`) replaces itself with a process
    preloading execution.allocator before its steps run, and says which malloc it ran on."""
    if not _installed("tcmalloc"):
        pytest.skip("tcmalloc is not installed here (CI installs it)")
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("LD_PRELOAD", "MLFLOW_TRACKING_URI", "LLM_ASSETS_PROFILE")
    } | {"DAGSTER_HOME": str(tmp_path), "LLM_ASSETS_STATE_DIR": str(tmp_path / "var")}
    done = subprocess.run(
        [sys.executable, "-m", "llm_assets.cli", "materialize", "--profile", str(TINY_PROFILE)]
        + ["--select", "raw_docs"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert "Materialized: 1 assets" in done.stdout
    assert "malloc tcmalloc)" in done.stdout
