"""The production instance's event log: Dagster's PostgreSQL storage, with pool slots claimed one
claim at a time.

A step in pool "gpu" runs only once it holds a slot, a row of the instance's slot table. Dagster
1.13 claims one in several statements on connections that commit each statement at once: it
checks that a slot is free and queues the step as entitled to it, then selects a free row
(`SELECT … FOR UPDATE SKIP LOCKED`, whose lock ends with the statement) and writes the claimant
into it by its id alone. Two processes that claim within a few milliseconds both pass the check,
select the same free row and both write it, the second over the first: both are told CLAIMED and
two trainings share one GPU. `llm_assets_tests/test_faults.py` catches it.

Here every claim of a pool first takes a PostgreSQL advisory lock named after the pool, on a
connection of its own, so the statements of two claims never interleave: the second sees the row
the first wrote and waits for its turn. The lock belongs to that connection's session, so a
claimant that dies mid-claim releases it with its connection. The CLI's own claims
(`llm_assets.defs.pools`) and the executor's (in the CLI's runs and in run workers the daemon
launches) all go through `claim_concurrency_slot`. dagster.production.yaml selects this class as
its `event_log_storage`.
"""

import zlib
from collections.abc import Mapping
from typing import Any

import sqlalchemy as db
from dagster_postgres import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

# The first key of the two-key advisory lock: this project's pool claims, apart from any other
# advisory lock an application takes in the same database.
POOL_CLAIM_LOCKS = 0x6C6C6D  # "llm"


def pool_lock_key(pool: str) -> int:
    """The second key of the advisory lock of `pool` (a signed 32-bit int, as Postgres wants)."""
    key = zlib.crc32(pool.encode("utf-8"))
    return key - 2**32 if key >= 2**31 else key


class SerialClaimsPostgresEventLogStorage(PostgresEventLogStorage):
    """`dagster_postgres.PostgresEventLogStorage` whose pool slot claims run one at a time per
    pool, across every process that uses the instance."""

    @classmethod
    def from_config_value(
        cls, inst_data: Any, config_value: Mapping[str, Any]
    ) -> "SerialClaimsPostgresEventLogStorage":
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )

    def claim_concurrency_slot(
        self, concurrency_key: str, run_id: str, step_key: str, priority: int | None = None
    ) -> Any:
        keys = {"claims": POOL_CLAIM_LOCKS, "pool": pool_lock_key(concurrency_key)}
        with self.index_connection() as lock:
            lock.execute(db.text("SELECT pg_advisory_lock(:claims, :pool)"), keys)
            try:
                return super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)
            finally:
                lock.execute(db.text("SELECT pg_advisory_unlock(:claims, :pool)"), keys)
