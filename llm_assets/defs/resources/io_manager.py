"""The asset store: every asset's value in a file under one folder, written atomically."""

import json
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import ValidationError

from llm_assets.contracts import Contract
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
        stem = self._stem(context.asset_key)
        if context.has_asset_partitions:
            stem = stem / context.asset_partition_key
        if isinstance(obj, StoredTable):
            move_into_place(obj.path, stem.with_suffix(".parquet"))
        elif isinstance(obj, pd.DataFrame):
            with atomic_file(stem.with_suffix(".parquet")) as temporary:
                obj.to_parquet(temporary, index=False)
        elif type(obj).__name__ in ("Dataset", "DatasetDict"):  # before dict: a DatasetDict is one
            _store_datasets(obj, stem, context.run_id)
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


def _store_datasets(obj: Any, stem: Path, run_id: str) -> None:
    """A `datasets` Dataset/DatasetDict as a folder per run, `<stem>.hfds` linking the latest."""
    versions = stem.with_suffix(".versions")
    version = versions / run_id
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
