"""A worker keeps its builder and runner (and their processes) across the jobs it runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray

from schedules_db import Store
from schedules_db.inventory import stats
from tunesvc.targets import ShareTarget
from tunesvc.pipeline.importer import extract_tasks, to_relax
from tunesvc.models.sources import load_model
from tunesvc.targets import TargetSpec
from workers.actor import start_worker
from workers.jobs import SearchConfig, TuneJob
from workers.shares import Share, machine_cores

pytestmark = pytest.mark.slow


def test_one_worker_measures_every_job_in_the_same_process(tmp_path: Path) -> None:
    share = Share("cpu", 100)
    target = TargetSpec("cpu").for_share(share)
    tasks = extract_tasks(to_relax(load_model("zoo:mlp")), target)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    at = ShareTarget.of(target, share)
    jobs = [TuneJob(f"pools-{i}", task, share, at.json, at.key, SearchConfig(trials=2),
                    str(tmp_path / f"job{i}")) for i, task in enumerate(tasks)]
    ray.init(num_cpus=machine_cores(), include_dashboard=False, log_to_driver=False)
    try:
        worker = start_worker(share, "pools", url)
        results = [ray.get(worker.tune.remote(job)) for job in jobs]
    finally:
        ray.shutdown()
    assert [r.error for r in results] == [None] * len(jobs)
    assert all(r.trials_measured == 2 for r in results)
    # A new runner per job would start a new measuring process, with a new pid.
    pids = {r.measuring_pid for r in results}
    assert len(pids) == 1 and None not in pids
    assert stats(Store(url)).records == 2 * len(jobs)
