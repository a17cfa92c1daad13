"""What every section of a profile shares: strict, frozen models, and the error a profile that
cannot be used raises. Stage `config.py` modules import only this, pydantic and the standard
library, so `llm_assets.settings` can gather them without an import cycle."""

from typing import Literal

from pydantic import BaseModel, ConfigDict

# A process's malloc (llm_assets.allocator): training.allocator, execution.allocator.
Allocator = Literal["auto", "system", "tcmalloc", "jemalloc"]


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the key."""


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in conf must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
