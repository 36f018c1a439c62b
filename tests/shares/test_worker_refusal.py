"""A worker that cannot prove its share records nothing, and says why."""

from __future__ import annotations

import os
from pathlib import Path

from schedules_db import Store
from schedules_db.inventory import stats
from tunesvc.targets import ShareTarget
from tunesvc.pipeline.importer import extract_tasks, to_relax
from tunesvc.models.sources import load_model
from workers.jobs import SearchConfig, TuneJob
from workers.shares import Share
from workers.tuner import run_job
from workers.warm import start_tools
from tvm.target import Target


def test_worker_on_the_wrong_cores_refuses_to_record(tmp_path: Path) -> None:
    target = Target({"kind": "llvm", "num-cores": 1})
    task = extract_tasks(to_relax(load_model("zoo:mlp")), target)[0]
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    at = ShareTarget.of(target, Share("cpu", 50))
    job = TuneJob("refuse", task, at.share, at.json, at.key, SearchConfig(trials=2),
                  str(tmp_path / "logs"))
    this_process = tuple(sorted(os.sched_getaffinity(0)))
    claimed = (max(this_process) + 1,)  # cores this process is not running on
    result = run_job(job, claimed, "test", start_tools(1, url, Share("cpu", 50)))
    assert not result.ok and "refusing to record at cpu:50%" in str(result.error)
    assert result.trials_measured == 0
    assert stats(Store(url)).records == 0


def test_worker_refuses_to_measure_for_another_cpu(tmp_path: Path) -> None:
    from tests.shares.test_targets import other_isa_target

    target = Target({**other_isa_target(), "num-cores": 1})
    task = extract_tasks(to_relax(load_model("zoo:mlp")), target)[0]
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    at = ShareTarget.of(target, Share("cpu", 50))
    job = TuneJob("isa", task, at.share, at.json, at.key, SearchConfig(trials=2),
                  str(tmp_path / "logs"))
    cores = tuple(sorted(os.sched_getaffinity(0)))[:1]
    result = run_job(job, cores, "test", start_tools(1, url, Share("cpu", 50)))
    assert not result.ok and "refusing to measure here" in str(result.error)
    assert "this host is" in str(result.error)
    assert stats(Store(url)).records == 0
