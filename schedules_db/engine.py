"""Engines and URLs: how a database URL becomes a SQLAlchemy engine tunesvc can rely on.

SQLite gets WAL and a busy timeout (several workers commit at once); every problem with a URL
is a `StoreError` with one line that names it, the password masked.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


RECONNECT_SEC = 60.0
RECONNECT_PAUSE_SEC = 0.5


class StoreError(RuntimeError):
    """The database cannot be opened or reached."""


def _enable_sqlite_concurrency(engine: Engine) -> None:
    # WAL lets readers proceed while one worker writes; busy_timeout makes writers queue
    # instead of failing with "database is locked" when several workers commit at once.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages and listings."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def create_store_engine(url: str) -> Engine:
    """An engine for `url`, with the SQLite settings tunesvc relies on; StoreError if bad."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"database URL {url!r} is not a valid SQLAlchemy URL") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().parent
        if not folder.is_dir():
            raise StoreError(f"database folder {folder} does not exist (from URL {url!r})")
    server = parsed.get_backend_name() != "sqlite"
    try:
        # A server may restart under a long run: test pooled connections before use.
        engine = create_engine(parsed, future=True, pool_pre_ping=server)
    except Exception as exc:  # unknown dialect, missing driver
        raise StoreError(f"cannot use database URL {safe_url(url)!r}: {exc}") from None
    if server:
        _wait_for_server_on_connect(engine)
    else:
        _enable_sqlite_concurrency(engine)
    return engine


def _wait_for_server_on_connect(engine: Engine) -> None:
    """A new connection waits up to RECONNECT_SEC for the server (a restart, a failover)
    once the store has been reached; the first connection of a Store fails at once."""
    reached = False

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, _record, cargs, cparams):  # type: ignore[no-untyped-def]
        nonlocal reached
        deadline = time.monotonic() + (RECONNECT_SEC if reached else 0.0)
        while True:
            try:
                connection = dialect.connect(*cargs, **cparams)
                reached = True
                return connection
            except dialect.loaded_dbapi.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(RECONNECT_PAUSE_SEC)
