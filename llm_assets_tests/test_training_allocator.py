"""The malloc the training process runs on: resolved on the training machine, preloaded by
restarting the process in place, never a changed result."""

import subprocess
import sys

import pytest

from llm_assets.training import allocator
from llm_assets.training.allocator import (
    AllocatorUnavailable,
    allocator_library,
    preload_environment,
)

RESTARTING_SCRIPT = """
import os, sys
from llm_assets.training.allocator import allocator_in_use, restart_with_allocator
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


def test_a_named_allocator_that_is_not_installed_says_which_package_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(allocator.ctypes.util, "find_library", lambda name: None)

    with pytest.raises(AllocatorUnavailable, match="apt-get install libjemalloc2"):
        allocator_library("jemalloc")
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
