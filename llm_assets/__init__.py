"""llm_assets: an organisation's own data to a custom LLM, as a Dagster asset graph."""

from llm_assets.airgap import keep_offline

keep_offline()
