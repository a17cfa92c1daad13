"""Code versions derived from what an asset reads, never typed by hand.

An asset names the profile settings it reads (`reads=("training", "datasets.max_length")`) and
the stage folders whose code makes it (`code=("training",)`). It gets back

- `code_version`: a digest of those settings' values and of those folders' Python files, so
  changing either makes the asset (and, through Dagster, what follows) stale, and nothing else
  does;
- `profile`: a copy of the profile in which every setting it did not declare is a placeholder
  that raises `UndeclaredSettingRead` on use. An asset body that reads a setting it forgot to
  declare fails on its first run instead of staying fresh when that setting changes.

`base_dir` (where the profile file lives) is always readable and never part of a code version:
moving a checkout is not a change of behaviour; the files it locates are versioned as data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

PACKAGE_ROOT = Path(__file__).resolve().parent
ALWAYS_READABLE = frozenset({"base_dir"})

ModelT = TypeVar("ModelT", bound=BaseModel)


class UndeclaredSettingRead(RuntimeError):
    """An asset used a profile setting it does not list in `reads`."""


class Undeclared:
    """Stands where an undeclared setting was. Any use of it (truth, comparison, arithmetic,
    iteration, formatting, attribute access) raises, naming the asset and the setting."""

    __slots__ = ("_asset", "_path")

    def __init__(self, asset: str, path: str) -> None:
        object.__setattr__(self, "_asset", asset)
        object.__setattr__(self, "_path", path)

    def _fail(self, *_: Any, **__: Any) -> Any:
        asset = object.__getattribute__(self, "_asset")
        path = object.__getattribute__(self, "_path")
        raise UndeclaredSettingRead(
            f"asset {asset!r} reads profile setting {path!r} but does not declare it: add "
            f"{path!r} to its reads so its code version follows the setting"
        )

    def __getattr__(self, name: str) -> Any:
        return self._fail()

    def __repr__(self) -> str:
        return f"<undeclared {object.__getattribute__(self, '_path')}>"

    __bool__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _fail
    __iter__ = __len__ = __contains__ = __getitem__ = __call__ = _fail
    __str__ = __format__ = __int__ = __float__ = __index__ = __fspath__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail
    __truediv__ = __rtruediv__ = __floordiv__ = __mod__ = __neg__ = __round__ = _fail


def masked(model: ModelT, reads: Iterable[str], asset: str, prefix: str = "") -> ModelT:
    """A copy of `model` whose fields outside `reads` (dotted paths) are `Undeclared`."""
    reads = set(reads)
    values: dict[str, Any] = {}
    for name in type(model).model_fields:
        path = f"{prefix}{name}"
        value = getattr(model, name)
        if path in reads or path in ALWAYS_READABLE:
            values[name] = value
        elif any(read.startswith(f"{path}.") for read in reads) and isinstance(value, list):
            # A list of named sections (sources) is declared item by item: `sources.tickets`.
            values[name] = [
                _masked_item(item, f"{path}.{item.name}", reads, asset) for item in value
            ]
        elif any(read.startswith(f"{path}.") for read in reads):
            if not isinstance(value, BaseModel):
                raise ValueError(f"asset {asset!r} declares a field inside {path!r}, a leaf")
            values[name] = masked(value, reads, asset, prefix=f"{path}.")
        else:
            values[name] = Undeclared(asset, path)
    return type(model).model_construct(_fields_set=model.model_fields_set, **values)


def _masked_item(item: BaseModel, path: str, reads: set[str], asset: str) -> Any:
    if path in reads:
        return item
    if any(read.startswith(f"{path}.") for read in reads):
        # The name is how the item is addressed, so it is part of every path to it.
        return masked(item, reads | {f"{path}.name"}, asset, prefix=f"{path}.")
    return Undeclared(asset, path)


def setting_value(model: BaseModel, path: str) -> Any:
    """The JSON form of the setting at dotted `path`."""
    value: Any = model
    for name in path.split("."):
        if isinstance(value, list):
            named = [item for item in value if getattr(item, "name", None) == name]
            if not named:
                raise ValueError(f"{path!r} is not a profile setting (no item named {name!r})")
            value = named[0]
        elif isinstance(value, BaseModel) and name in type(value).model_fields:
            value = getattr(value, name)
        else:
            raise ValueError(f"{path!r} is not a profile setting ({name!r} unknown)")
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [
            item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in value
        ]
    return json.loads(json.dumps(value, default=str))


@cache
def stage_code_digest(stage: str) -> str:
    """A digest of the Python files of `llm_assets/<stage>` (a folder or a module path such as
    `defs/training.py`), by relative path and content."""
    target = PACKAGE_ROOT / stage
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    if not files or not all(path.is_file() for path in files):
        raise ValueError(f"no Python source at llm_assets/{stage}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(PACKAGE_ROOT).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _without(value: Any, relative: list[str]) -> Any:
    """`value` (a dumped section) without the dotted `relative` paths."""
    for path in relative:
        *parents, leaf = path.split(".")
        holder = value
        for name in parents:
            holder = holder.get(name, {}) if isinstance(holder, dict) else {}
        if isinstance(holder, dict):
            holder.pop(leaf, None)
    return value


def derived_code_version(
    profile: BaseModel,
    reads: Iterable[str],
    code: Iterable[str],
    extra: Any = None,
    runtime: Iterable[str] = (),
) -> str:
    """`reads` values (less the `runtime` settings inside them) + `code` sources (+ `extra`,
    e.g. the digest of a file a setting names) as one short digest."""
    runtime = set(runtime)
    settings = {
        path: _without(
            setting_value(profile, path),
            [r.removeprefix(f"{path}.") for r in runtime if r.startswith(f"{path}.")],
        )
        for path in sorted(set(reads))
    }
    payload = {
        "settings": settings,
        "code": {stage: stage_code_digest(stage) for stage in sorted(set(code))},
        "extra": extra,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class AssetSettings(Generic[ModelT]):
    """What one asset may read of a profile, and the code version that follows from it."""

    def __init__(
        self,
        profile: ModelT,
        asset: str,
        reads: Iterable[str],
        code: Iterable[str],
        extra: Any = None,
        runtime: Iterable[str] = (),
    ) -> None:
        self.asset = asset
        self.reads = tuple(sorted(set(reads)))
        # How a step runs, not what it makes (batch sizes, worker counts, launchers): readable,
        # but changing one must not re-run anything.
        self.runtime = tuple(sorted(set(runtime)))
        self.code = tuple(sorted(set(code)))
        self.code_version = derived_code_version(
            profile, self.reads, self.code, extra, self.runtime
        )
        self.profile: ModelT = masked(profile, {*self.reads, *self.runtime}, asset)

    def metadata(self) -> dict[str, Any]:
        """Shown on the asset in the UI: what it reads, so a user knows what re-runs it."""
        return {
            "settings_read": list(self.reads),
            "settings_read_not_versioned": list(self.runtime),
            "code_from": [f"llm_assets/{stage}" for stage in self.code],
        }
