"""Which malloc a process runs on (`training.allocator` for the training process,
`execution.allocator` for `llm-assets materialize` and the Dagster runs `make dev` starts).

A training step on CPU allocates and frees thousands of differently sized temporaries
(activations of batches of every length, bf16 copies of fp32 tensors), and evaluation does the
same with key/value caches of every prompt length. glibc's malloc keeps much of what is freed,
so the process's resident set creeps up over the run, and returns small blocks slowly. tcmalloc
and jemalloc reuse them: over 24 steps of the default profile's rows
(`benchmarks/bench_training_memory.py`, docs/pipeline.md) both peaked about 930 MB lower than
glibc with identical losses, and tcmalloc's step was faster as well; evaluation on tcmalloc was
1.09x as fast with identical answers (`benchmarks/bench_allocator.py`).

A library is only used if it is preloaded when the process starts (`LD_PRELOAD`), so a process
restarts itself once, in place (`os.execve`, same pid, same arguments and environment plus the
preload), before it imports anything heavy. Its children inherit the preload; one that wants
another allocator (or glibc's) swaps it. It is looked up on the machine that runs the process,
which is not always the orchestrator's (a Kubernetes pod). No library changes a computed number.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from llm_assets.config_base import Allocator

# The names `ctypes.util.find_library` looks for, best first, and the Debian/Ubuntu package of
# each allocator.
LIBRARIES = {"tcmalloc": ("tcmalloc_minimal", "tcmalloc"), "jemalloc": ("jemalloc",)}
PACKAGES = {"tcmalloc": "libtcmalloc-minimal4", "jemalloc": "libjemalloc2"}
# `auto` takes the first of these that is installed, else glibc's own.
AUTO_ORDER = ("tcmalloc", "jemalloc")


class AllocatorUnavailable(RuntimeError):
    """An allocator setting names a library this machine does not have."""


def allocator_library(
    setting: Allocator, setting_name: str = "training.allocator"
) -> tuple[str, str | None]:
    """The allocator `setting` resolves to on this machine and its shared library's name (None
    for glibc's malloc). Raises `AllocatorUnavailable` for a named one that is not installed;
    `setting_name` is the profile key the message tells the user to change."""
    if setting == "system":
        return "system", None
    for name in AUTO_ORDER if setting == "auto" else (setting,):
        for library in LIBRARIES[name]:
            found = ctypes.util.find_library(library)
            if found:
                return name, found
    if setting == "auto":
        return "system", None
    raise AllocatorUnavailable(
        f"{setting_name}: {setting} is not installed on this machine (no lib"
        f"{LIBRARIES[setting][0]}); install it (Debian/Ubuntu: apt-get install "
        f"{PACKAGES[setting]}) or set {setting_name} to auto or system"
    )


def _is_allocator(entry: str) -> bool:
    name = Path(entry).name
    libraries = [library for names in LIBRARIES.values() for library in names]
    return any(name.startswith(f"lib{library}.") for library in libraries)


def preload_environment(
    environment: Mapping[str, str], library: str | None
) -> dict[str, str] | None:
    """`environment` with `library` preloaded first (None: glibc's malloc) in place of any
    allocator preloaded before (a parent's), other preloads kept; None when it already is so."""
    preloaded = environment.get("LD_PRELOAD", "").replace(":", " ").split()
    allocators = [entry for entry in preloaded if _is_allocator(entry)]
    wanted = [] if library is None else [Path(library).name]
    if [Path(entry).name for entry in allocators] == wanted:
        return None
    others = [entry for entry in preloaded if not _is_allocator(entry)]
    entries = ([library] if library else []) + others
    updated = {key: value for key, value in environment.items() if key != "LD_PRELOAD"}
    return {**updated, "LD_PRELOAD": " ".join(entries)} if entries else updated


def restart_with_allocator(setting: Allocator, setting_name: str = "training.allocator") -> None:
    """Replace this process with itself running on `setting`'s allocator, unless it already
    does. Call before anything is printed or imported heavily."""
    _, library = allocator_library(setting, setting_name)
    environment = preload_environment(os.environ, library)
    if environment is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(sys.orig_argv), environment)


def allocator_in_use() -> str:
    """Which allocator this process runs on: tcmalloc, jemalloc (when its library is mapped
    into the process) or system."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "system"
    for name, libraries in LIBRARIES.items():
        if any(f"lib{library}." in maps for library in libraries):
            return name
    return "system"
