"""The store suite runs every test over three databases: a fresh SQLite file, a fresh
PostgreSQL schema, and a SQLite file that started at the first released schema (the
fixture), upgraded by the migrations and emptied: what an upgraded user's database is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete

from schedules_db.migrate import upgrade
from schedules_db.schema import Base
from schedules_db.engine import create_store_engine

FIRST_SCHEMA_DB = Path(__file__).resolve().parents[1] / "fixtures" / "schedules-rev0001.sqlite"


def upgraded_empty(folder: Path) -> str:
    """A copy of the first-schema database, upgraded to the newest schema, every row gone."""
    copy = folder / "upgraded.sqlite"
    shutil.copy(FIRST_SCHEMA_DB, copy)
    url = f"sqlite:///{copy}"
    upgrade(create_store_engine(url))
    engine = create_engine(url)
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):  # children before parents
            connection.execute(delete(table))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql", "sqlite-upgraded"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-upgraded":
        return upgraded_empty(tmp_path)
    return request.getfixturevalue("db_url_" + request.param)
