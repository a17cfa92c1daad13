"""Which malloc the training process runs on (`training.allocator`).

A training step on CPU allocates and frees thousands of differently sized temporaries
(activations of batches of every length, bf16 copies of fp32 tensors). glibc's malloc keeps much
of what is freed, so the process's resident set creeps up over the run, and returns small blocks
slowly. tcmalloc and jemalloc reuse them: over 24 steps of the default profile's rows
(`benchmarks/bench_training_memory.py`, docs/pipeline.md) both peaked about 930 MB lower than
glibc with identical losses, and tcmalloc's step was faster as well.

A library is only used if it is preloaded when the process starts (`LD_PRELOAD`), so the training
process restarts itself once, in place (`os.execve`, same pid, same arguments and environment
plus the preload), before it imports anything heavy. It is looked up on the machine that trains,
which is not always the orchestrator's (a Kubernetes pod). No library changes a computed number.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from llm_assets.training.config import Allocator

# The names `ctypes.util.find_library` looks for, best first, and the Debian/Ubuntu package of
# each allocator.
LIBRARIES = {"tcmalloc": ("tcmalloc_minimal", "tcmalloc"), "jemalloc": ("jemalloc",)}
PACKAGES = {"tcmalloc": "libtcmalloc-minimal4", "jemalloc": "libjemalloc2"}
# `auto` takes the first of these that is installed, else glibc's own.
AUTO_ORDER = ("tcmalloc", "jemalloc")


class AllocatorUnavailable(RuntimeError):
    """`training.allocator` names a library this machine does not have."""


def allocator_library(setting: Allocator) -> tuple[str, str | None]:
    """The allocator `setting` resolves to on this machine and its shared library's name (None
    for glibc's malloc). Raises `AllocatorUnavailable` for a named one that is not installed."""
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
        f"training.allocator: {setting} is not installed on this machine (no lib"
        f"{LIBRARIES[setting][0]}); install it (Debian/Ubuntu: apt-get install "
        f"{PACKAGES[setting]}) or set training.allocator to auto or system"
    )


def preload_environment(environment: Mapping[str, str], library: str) -> dict[str, str] | None:
    """`environment` with `library` preloaded, or None when it already is."""
    preloaded = environment.get("LD_PRELOAD", "").replace(":", " ").split()
    if any(Path(entry).name == Path(library).name for entry in preloaded):
        return None
    return {**environment, "LD_PRELOAD": " ".join([library, *preloaded])}


def restart_with_allocator(setting: Allocator) -> None:
    """Replace this process with itself running on `setting`'s allocator, unless it already
    does (or the setting is glibc's). Call before anything is printed or imported heavily."""
    _, library = allocator_library(setting)
    if library is None:
        return
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
