"""The code location: `dagster dev -w workspace.yaml`, `dg list defs` and `dg check defs` load this.

Every module of `llm_assets/defs/` that declares a piece (a stage's assets and checks, or the
location's jobs, sensors and resources) is found by Dagster's own loader. `defs` is a plain
`Definitions`, so `defs.load_asset_value("cleaned_corpus")` works in a notebook.
"""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
