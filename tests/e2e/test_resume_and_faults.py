"""Long runs survive crashes: rerunning resumes, a killed worker's job is retried, and in
every case each slice ends with exactly its trial budget and no candidate measured twice.

Real processes are killed with SIGKILL: the whole coordinator (with the Ray it started),
or one Ray worker in the middle of a task.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import tunesvc
from workers.jobs import SearchConfig

pytestmark = pytest.mark.slow
MLP_TASKS = 2
TRIALS_PER_ROUND = SearchConfig(trials=0).trials_per_round
POLL_SEC = 0.5


def _records(db_path: Path) -> list[tuple[int, int, str]]:
    """(workload id, share percent, trace) of every record; empty before the first one."""
    if not db_path.exists():
        return []
    engine = create_engine(f"sqlite:///{db_path}")
    query = text("SELECT r.workload_id, s.percent, r.trace_json FROM tuning_records r "
                 "JOIN shares s ON s.id = r.share_id")
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(query)]
    except Exception:  # tables not created yet
        return []
    finally:
        engine.dispose()


def _assert_exact_budget(db_path: Path, share: int, trials: int) -> None:
    rows = [row for row in _records(db_path) if row[1] == share]
    per_slice = Counter(workload for workload, _, _ in rows)
    assert sorted(per_slice.values()) == [trials] * MLP_TASKS, per_slice
    measured_twice = [t for t, n in Counter((w, t) for w, _, t in rows).items() if n > 1]
    assert measured_twice == []


def _wait_for_records(db_path: Path, at_least: int, process: subprocess.Popen,
                      limit_sec: float = 600) -> None:
    deadline = time.monotonic() + limit_sec
    while len(_records(db_path)) < at_least:
        assert process.poll() is None, "tuning ended before it could be interrupted"
        assert time.monotonic() < deadline, "no records appeared"
        time.sleep(POLL_SEC)


def _start_tune(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tunesvc", "tune", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _kill_session(process: subprocess.Popen) -> None:
    """SIGKILL the coordinator and everything it started (its local Ray included)."""
    session = os.getsid(process.pid)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for leftover in psutil.process_iter(["pid"]):
        try:
            if os.getsid(leftover.pid) == session:
                leftover.kill()
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue


def test_rerun_skips_completed_slices_and_tops_up_budgets(tmp_path: Path,
                                                          tunesvc_env: dict) -> None:
    db = tmp_path / "db.sqlite"
    args = ["zoo:mlp", "--shares", "50", "--db", f"sqlite:///{db}"]
    first = tunesvc("tune", *args, "--trials-per-task", "4", env=tunesvc_env)
    assert first.returncode == 0, first.stderr
    again = tunesvc("tune", *args, "--trials-per-task", "4", env=tunesvc_env)
    assert again.returncode == 0, again.stderr
    assert "2 task x share slices already hold their trials" in again.stdout
    assert "Nothing to tune" in again.stdout
    assert len(_records(db)) == MLP_TASKS * 4
    assert "n/a" not in again.stdout.splitlines()[-1]  # untuned estimate kept from run one
    more = tunesvc("tune", *args, "--trials-per-task", "6", env=tunesvc_env)
    assert more.returncode == 0, more.stderr
    _assert_exact_budget(db, share=50, trials=6)


def test_killed_coordinator_resumes_where_it_stopped(tmp_path: Path, tunesvc_env: dict) -> None:
    db = tmp_path / "db.sqlite"
    trials = 4 * TRIALS_PER_ROUND  # records land a round at a time: kill after the first
    args = ["zoo:mlp", "--shares", "50", "--trials-per-task", str(trials),
            "--db", f"sqlite:///{db}"]
    running = _start_tune(args, tunesvc_env)
    _wait_for_records(db, at_least=1, process=running)
    _kill_session(running)
    before = len(_records(db))
    assert 0 < before < MLP_TASKS * trials
    resumed = tunesvc("tune", *args, env=tunesvc_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _assert_exact_budget(db, share=50, trials=trials)


def _worker_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any("ShareWorker" in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def test_killed_worker_job_is_retried_without_loss(tmp_path: Path, tunesvc_env: dict) -> None:
    db = tmp_path / "db.sqlite"
    trials = 8
    running = _start_tune(["zoo:mlp", "--shares", "100", "--trials-per-task", str(trials),
                           "--db", f"sqlite:///{db}"], tunesvc_env)
    _wait_for_records(db, at_least=1, process=running)
    (worker,) = _worker_processes()
    worker.kill()
    stdout, stderr = running.communicate(timeout=900)
    assert running.returncode == 0, stdout + stderr
    assert "FAILED" not in stdout
    _assert_exact_budget(db, share=100, trials=trials)
