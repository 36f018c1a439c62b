"""Cross-share transfer: tuning a share a workload was never tuned at starts from the
nearest tuned share's best schedules (measured here first); `--no-transfer` does not."""

from __future__ import annotations

import shutil
from pathlib import Path

from schedules_db import Store
from schedules_db.ms_adapter import SliceDatabase
from tests.conftest import TRIALS, TunedDatabase, tunesvc
from tunesvc.targets import TargetSpec
from tunesvc.tuning.planning import prepare
from tunesvc.tuning.request import TuneRequest
from workers.search import measured_modules
from workers.shares import Share


def _fresh_at_50(tuned_mlp: TunedDatabase, tmp_path: Path, env: dict[str, str]) -> str:
    """A copy of the tuned database without its 50% records."""
    copy = tmp_path / "copy.sqlite"
    shutil.copy(tuned_mlp.url.removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    done = tunesvc("db", "delete", "--model", "zoo:mlp", "--share", "50", "--yes", "--db", url,
                   env=env)
    assert done.returncode == 0, done.stderr
    return url


def _modules(url: str, percent: int, successful_only: bool = False) -> set[int]:
    key = TargetSpec("cpu").at(Share("cpu", percent)).key
    store = Store(url)
    try:
        records = SliceDatabase(store, key) \
            .get_all_tuning_records()
        if successful_only:
            records = [r for r in records if r.run_secs and float(r.run_secs[0]) < 1e9]
        return measured_modules(records)
    finally:
        store.close()


def _job_logs(folder: Path) -> str:
    return "".join(path.read_text() for path in folder.rglob("*.log"))


def test_a_new_share_starts_from_the_nearest_tuned_shares_best(
        tuned_mlp: TunedDatabase, tmp_path: Path, tunesvc_env: dict[str, str]) -> None:
    url = _fresh_at_50(tuned_mlp, tmp_path, tunesvc_env)
    done = tunesvc("tune", "zoo:mlp", "--shares", "50", "--trials-per-task", str(TRIALS),
                   "--transfer", "--no-compare", "-q", "--log-dir", str(tmp_path / "logs"),
                   "--db", url, env=tunesvc_env)
    assert done.returncode == 0, done.stderr
    best_at_100 = _modules(url, 100, successful_only=True)
    assert best_at_100 and best_at_100 <= _modules(url, 50)  # measured here, at 50%
    assert "transfer: measured" in _job_logs(tmp_path / "logs")
    tasks = _tasks_of_mlp()
    assert (f"--transfer at cpu:50%: {tasks} of {tasks} tasks new here start from another "
            "share's best\n") in done.stdout + done.stderr


def test_transfer_says_which_tasks_have_nothing_to_start_from(tmp_path: Path) -> None:
    """Planned on an empty database: every task searches from scratch, and the plan says so."""
    request = TuneRequest.of("zoo:mlp", "cpu", "50", db=f"sqlite:///{tmp_path / 'db.sqlite'}",
                             transfer=True, log_dir=tmp_path / "logs")
    (sources,) = prepare(request).transfer
    assert (sources.share.percent, sources.with_source) == (50, 0)
    assert sources.new_tasks == _tasks_of_mlp()


def _tasks_of_mlp() -> int:
    from tunesvc.pipeline.importer import extract_tasks, to_relax
    from tunesvc.models.sources import load_model

    target = TargetSpec("cpu").at(Share("cpu", 50)).target
    return len(extract_tasks(to_relax(load_model("zoo:mlp")), target))


def test_no_transfer_searches_from_scratch(tuned_mlp: TunedDatabase, tmp_path: Path,
                                           tunesvc_env: dict[str, str]) -> None:
    url = _fresh_at_50(tuned_mlp, tmp_path, tunesvc_env)
    done = tunesvc("tune", "zoo:mlp", "--shares", "50", "--trials-per-task", str(TRIALS),
                   "--no-transfer", "--no-compare", "-q", "--log-dir", str(tmp_path / "logs"),
                   "--db", url, env=tunesvc_env)
    assert done.returncode == 0, done.stderr
    assert "transfer:" not in _job_logs(tmp_path / "logs")
    assert len(_modules(url, 50)) > 0
