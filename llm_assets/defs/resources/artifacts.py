"""The artifact store: folders of models, adapters and reports."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from llm_assets.storage import atomic_directory


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
