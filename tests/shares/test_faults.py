"""Faults users hit, replayed as they were hit: each now ends in one clear line, and
nothing stored is lost (issue: runs that never lose records or fail without saying why)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TunedDatabase, tunesvc
from tests.e2e.test_resume_and_faults import _records, _start_tune, _wait_for_records
from tunesvc.targets import ShareTarget
from workers.shares import machine_cores
from workers.shares.core_claims import CLAIMS_ENV, claim_cores

TWO_CORES = pytest.mark.skipif(machine_cores() < 2, reason="needs a machine with two cores")


def _copy_db(tuned: TunedDatabase, tmp_path: Path) -> Path:
    source = Path(tuned.url.removeprefix("sqlite:///"))
    copy = tmp_path / "copy.sqlite"
    shutil.copy(source, copy)
    return copy


def _one_error_line(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(("address", "fragments"), [
    ("http://127.0.0.1:9", ["RAY_ADDRESS=http://127.0.0.1:9 is a Ray dashboard URL",
                            "HEAD:6379"]),
    ("127.0.0.1:9", ["cannot reach the Ray cluster at 127.0.0.1:9 (from RAY_ADDRESS)"]),
    ("garbage::", ["RAY_ADDRESS=garbage:: is not a Ray address"]),
])
def test_fresh_with_a_bad_ray_address_is_one_line_and_deletes_nothing(
        address: str, fragments: list[str], tuned_mlp: TunedDatabase, tmp_path: Path,
        tunesvc_env: dict) -> None:
    db = _copy_db(tuned_mlp, tmp_path)
    before = sorted(_records(db))
    done = tunesvc("tune", "zoo:mlp", "--shares", "100", "--trials-per-task", "8", "--fresh",
                   "--db", f"sqlite:///{db}", env={**tunesvc_env, "RAY_ADDRESS": address},
                   timeout=300)
    _one_error_line(done, *fragments)
    assert before and sorted(_records(db)) == before


def test_jobs_commands_explain_a_cluster_address(tunesvc_env: dict) -> None:
    done = tunesvc("jobs", "status", "raysubmit_x", "--address", "127.0.0.1:6379",
                   env=tunesvc_env, timeout=120)
    _one_error_line(done, "--address=127.0.0.1:6379 is not a Ray dashboard URL",
                    "http://HEAD:8265")


def _hold_cores(count: int, ready: multiprocessing.Event, release: multiprocessing.Event) -> None:
    claim_cores(count)  # what another tuning run's workers leave on the machine
    ready.set()
    release.wait(300)


@pytest.fixture()
def busy_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Every core of this machine claimed by another live process, as a running tune does."""
    monkeypatch.setenv(CLAIMS_ENV, str(tmp_path / "claims"))
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_cores, args=(len(os.sched_getaffinity(0)), ready,
                                                       release))
    holder.start()
    assert ready.wait(60)
    yield holder.pid
    release.set()
    holder.join(30)


@pytest.mark.slow
def test_a_second_tune_on_a_busy_machine_fails_at_once_saying_why(
        busy_machine: int, tmp_path: Path, tunesvc_env: dict) -> None:
    env = {**tunesvc_env, CLAIMS_ENV: os.environ[CLAIMS_ENV]}
    started = time.monotonic()
    done = tunesvc("tune", "zoo:mlp", "--shares", "50", "--trials-per-task", "4",
                   "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", env=env, timeout=300)
    _one_error_line(done, "cannot start: needs 1 cores", f"pid {busy_machine}",
                    "Another tuning run")
    assert time.monotonic() - started < 120
    assert _records(tmp_path / "db.sqlite") == []


@pytest.mark.slow
def test_a_worker_that_cannot_start_reports_why_in_the_job_log(
        busy_machine: int, tmp_path: Path) -> None:
    import ray

    from tunesvc.tuning.dispatch import Dispatcher
    from tunesvc.pipeline.importer import extract_tasks, to_relax
    from tunesvc.tuning.job_sources import QueuedJobs
    from tunesvc.models.sources import load_model
    from tunesvc.targets import TargetSpec
    from workers.jobs import SearchConfig, TuneJob
    from workers.shares import Share

    share = Share("cpu", 50)
    target = TargetSpec("cpu").for_share(share)
    tasks = extract_tasks(to_relax(load_model("zoo:mlp")), target)
    at = ShareTarget.of(target, share)
    jobs = [TuneJob(f"busy-{i}", task, share, at.json, at.key, SearchConfig(trials=2),
                    str(tmp_path / f"job{i}")) for i, task in enumerate(tasks)]
    ray.init(num_cpus=machine_cores(), include_dashboard=False, log_to_driver=False)
    try:
        results = Dispatcher(f"sqlite:///{tmp_path / 'db.sqlite'}").run(
            [QueuedJobs(share, jobs)], lambda result: None)
    finally:
        ray.shutdown()
    assert len(results) == len(jobs) and not any(r.ok for r in results)
    assert all("worker could not start: CoresBusy" in str(r.error) for r in results)
    assert f"pid {busy_machine}" in Path(results[0].log_path).read_text()


@TWO_CORES
def test_run_at_a_quarter_of_two_cores_runs_on_one_and_says_so(tmp_path: Path,
                                                                tunesvc_env: dict) -> None:
    done = tunesvc("run", "zoo:mlp", "--share", "25", "--runs", "3", "--no-reference",
                   "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", env=tunesvc_env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"cpu:25% = 1 of {machine_cores()} cores" in done.stdout


def test_load_leaves_the_calling_process_alone(tmp_path: Path) -> None:
    from tunesvc.runtime.tuned import load

    affinity, threads = os.sched_getaffinity(0), os.environ.get("TVM_NUM_THREADS")
    model = load("zoo:mlp", share=50, db=f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert model.share.percent == 50
    assert os.sched_getaffinity(0) == affinity
    assert os.environ.get("TVM_NUM_THREADS") == threads


@TWO_CORES
def test_a_process_started_on_one_core_runs_at_its_share_of_the_machine() -> None:
    code = ("from workers.shares import BACKENDS; "
            "print(BACKENDS['cpu'].current().percent)")
    done = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=120, check=True)
    assert int(done.stdout.strip()) == round(100 / machine_cores())


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_keeps_the_records_and_says_how_to_resume(
        tmp_path: Path, tunesvc_env: dict) -> None:
    db = tmp_path / "db.sqlite"
    running = _start_tune(["zoo:mlp", "--shares", "100", "--trials-per-task", "64",
                           "--db", f"sqlite:///{db}"], tunesvc_env)
    _wait_for_records(db, at_least=2, process=running)
    os.killpg(running.pid, signal.SIGINT)  # what Ctrl-C sends the terminal's process group
    stdout, stderr = running.communicate(timeout=120)
    assert running.returncode == 130, stdout + stderr
    assert "Run the same command again to resume" in stderr
    assert "Traceback" not in stderr
    kept = len(_records(db))
    assert kept >= 2
    time.sleep(2)
    assert len(_records(db)) == kept  # nothing still measuring behind the user's back
