"""The code location: `dagster dev -w workspace.yaml` and `llm-assets materialize` load this."""

from llm_assets.defs import build_definitions
from llm_assets.settings import load_profile

defs = build_definitions(load_profile())
