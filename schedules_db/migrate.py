"""Schema versions: alembic migrations shipped in `schedules_db/migrations`.

A new database is brought to the newest revision when first opened; an existing one is
only upgraded on request (`tunesvc db upgrade`), because an upgrade may take a while and
other readers may still expect the old schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

MIGRATIONS = Path(__file__).parent / "migrations"
# Databases written before migrations existed have exactly this revision's tables.
FIRST_REVISION = "0001"


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str
    has_tables: bool

    @property
    def is_new(self) -> bool:
        return self.current is None and not self.has_tables

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return str(ScriptDirectory.from_config(_config()).get_current_head())


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        tables = set(inspect(connection).get_table_names())
    return SchemaState(current, head_revision(), bool(tables & {"workloads", "tuning_records"}))


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (from, to)."""
    state = schema_state(engine)
    with engine.begin() as connection:
        if state.current is None and state.has_tables:
            command.stamp(_config(connection), FIRST_REVISION)
        command.upgrade(_config(connection), "head")
    return state.current, state.head
