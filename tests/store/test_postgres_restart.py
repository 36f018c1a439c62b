"""A PostgreSQL server restarted in the middle of a tuning run loses no committed record,
and the run finishes (its workers reconnect) or a rerun resumes it."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import create_engine, text

from schedules_db import testing as pg
from tests.conftest import tunesvc
from tests.e2e.test_resume_and_faults import MLP_TASKS, POLL_SEC, _start_tune

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
TRIALS = 16


def _record_ids(url: str) -> set[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.scalars(text("SELECT id FROM tuning_records")))
    except Exception:  # tables not there yet
        return set()
    finally:
        engine.dispose()


def test_a_restarted_server_loses_no_record(tunesvc_env: dict) -> None:
    if pg.server_binaries() is None and not os.environ.get(pg.REQUIRE_ENV):
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    with pg.running_server() as server:
        args = ["zoo:mlp", "--shares", "100", "--trials-per-task", str(TRIALS), "--db",
                server.url]
        running = _start_tune(args, tunesvc_env)
        deadline = time.monotonic() + 600
        while len(before := _record_ids(server.url)) < 2:
            assert running.poll() is None and time.monotonic() < deadline, "no records came"
            time.sleep(POLL_SEC)
        server.restart()
        stdout, stderr = running.communicate(timeout=900)
        assert "Traceback" not in stderr
        assert before <= _record_ids(server.url)  # every record committed before is kept
        if running.returncode != 0:  # a job caught mid-commit failed: a rerun resumes it
            rerun = tunesvc("tune", *args, env=tunesvc_env)
            assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert len(_record_ids(server.url)) == MLP_TASKS * TRIALS
