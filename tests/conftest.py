"""Shared fixtures. The expensive one, `tuned_mlp`, tunes zoo:mlp for real once per session
(real TVM, real local Ray, real SQLite) through the CLI, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from schedules_db import testing as pg

SHARES = (50, 100)
TRIALS = 4


@dataclass(frozen=True)
class TunedDatabase:
    url: str
    stdout: str
    home: Path


def tunesvc(*args: str, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process, as a user would."""
    return subprocess.run([sys.executable, "-m", "tunesvc", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what it needs, so `-m "not postgres"` or `-m cpu` select by that."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgres_server" in fixtures or params.get("db_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)
        if "tuned_mlp" in fixtures:  # tunes for real (once per session)
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("slow") is not None or "tuned_mlp" in fixtures:
            item.add_marker(pytest.mark.cpu)


@pytest.fixture(scope="session")
def tunesvc_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("tunesvc-home")
    env = {**os.environ, "TUNESVC_HOME": str(home)}
    env.pop("TUNESVC_DB", None)
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="session")
def tuned_mlp(tmp_path_factory: pytest.TempPathFactory, tunesvc_env: dict[str, str]) -> TunedDatabase:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'schedules.sqlite'}"
    shares = ",".join(str(s) for s in SHARES)
    done = tunesvc("tune", "zoo:mlp", "--target", "cpu", "--shares", shares,
                   "--trials-per-task", str(TRIALS), "--db", url, env=tunesvc_env)
    assert done.returncode == 0, done.stdout + done.stderr
    return TunedDatabase(url, done.stdout, Path(tunesvc_env["TUNESVC_HOME"]))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a real PostgreSQL database for the whole session."""
    if os.environ.get(pg.URL_ENV):
        yield os.environ[pg.URL_ENV]
        return
    if pg.server_binaries() is None and not os.environ.get(pg.REQUIRE_ENV):
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    with pg.temporary_server() as url:
        yield url


def _empty_postgres(url: str) -> str:
    # Each test gets an empty schema: drop everything tunesvc created.
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture
def db_url_sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'schedules.sqlite'}"


@pytest.fixture
def db_url_postgresql(postgres_server: str) -> str:
    return _empty_postgres(postgres_server)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Tests that use a database run against a fresh SQLite file and a fresh PostgreSQL
    schema (the store suite, `tests/store/`, over an upgraded old one too)."""
    return request.getfixturevalue("db_url_" + request.param)
