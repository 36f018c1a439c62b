"""A throwaway PostgreSQL server for tests and benchmarks: its own data folder, port, socket.

Uses the server binaries of the Debian `postgresql` package (.ci/run installs it). Set
TUNESVC_TEST_PG_URL to use an existing server instead; set TUNESVC_REQUIRE_PG=1 (CI does)
to fail rather than skip when no server can be started.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

URL_ENV = "TUNESVC_TEST_PG_URL"
REQUIRE_ENV = "TUNESVC_REQUIRE_PG"
DATABASE = "tunesvc_test"


def server_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; Debian's package creates the `postgres` user.
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


@dataclass(frozen=True)
class PgServer:
    """A running throwaway server: its URL, and a way to restart it as an operator would."""

    url: str
    restart: Callable[[], None]


@contextmanager
def temporary_server() -> Iterator[str]:
    """Start a server on 127.0.0.1, create the test database, yield its URL, stop it."""
    with running_server() as server:
        yield server.url


@contextmanager
def running_server() -> Iterator[PgServer]:
    """As `temporary_server`, yielding the server itself (for restarts)."""
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="tunesvc-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    data, port = folder / "data", _free_port()
    run = lambda *args: subprocess.run(_as_server_user(list(args)), check=True,  # noqa: E731
                                       capture_output=True, text=True)
    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    control = [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l",
               str(folder / "log"), "-w"]
    run(*control, "start")
    try:
        run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
            DATABASE)
        yield PgServer(f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASE}",
                       lambda: run(*control, "-m", "fast", "restart"))
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
