"""The store of served exchanges and the feedback on them."""

from pathlib import Path
from typing import Any

import dagster as dg


class FeedbackStoreResource(dg.ConfigurableResource):
    """The exchanges `llm-assets serve` stored and the feedback on them (serving/store.py): the
    database whose SQLAlchemy URL is in the environment variable `url_env` (Postgres in
    production, the password kept out of config), else SQLite under the state folder."""

    url_env: str = "LLM_ASSETS_FEEDBACK_DB_URL"
    sqlite_path: str | None = None

    def url(self) -> str:
        from llm_assets.serving.store import database_url

        return database_url(self.url_env, Path(self.sqlite_path) if self.sqlite_path else None)

    def engine(self) -> Any:
        from llm_assets.serving.store import open_database

        return open_database(self.url())
