"""`--workers-per-share`: how many workers tune one share at once. By default as many as fit
on the machine (at 50% of 2 cores, two one-core workers); with 1, every job of the share runs
on one worker, so the tuning holds one share's worth of cores (the rest stays free)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from schedules_db import Store
from tests.conftest import TRIALS, TunedDatabase, tunesvc
from tunesvc.cli.cluster import forwarded_options
from tunesvc.cli.tune import tune
from tunesvc.targets import TargetSpec
from workers.shares import Share

AT_50 = Share("cpu", 50)


def _workers_of_records(url: str) -> set[str]:
    store = Store(url)
    try:
        return {record.worker for record in store.all_records(TargetSpec("cpu").at(AT_50).key)}
    finally:
        store.close()


def test_a_submitted_job_keeps_the_cap() -> None:
    options = forwarded_options("cpu", "50", 300, None, None, fresh=False, transfer=False,
                                warm=True, workers_per_share=1)
    with tune.make_context("tune", ["zoo:mlp", *options]) as context:
        assert context.params["workers_per_share"] == 1


def test_zero_workers_is_refused_in_one_line(tunesvc_env: dict[str, str]) -> None:
    done = tunesvc("tune", "zoo:mlp", "--workers-per-share", "0", env=tunesvc_env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--workers-per-share" in done.stderr and "x>=1" in done.stderr


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core holds one 50% worker anyway")
def test_one_worker_per_share_runs_every_job_of_the_share(
        tuned_mlp: TunedDatabase, tmp_path: Path, tunesvc_env: dict[str, str]) -> None:
    assert len(_workers_of_records(tuned_mlp.url)) == 2  # the default: both halves tuned
    url = f"sqlite:///{tmp_path / 'one.sqlite'}"
    done = tunesvc("tune", "zoo:mlp", "--shares", "50", "--trials-per-task", str(TRIALS),
                   "--workers-per-share", "1", "--no-compare", "--json", "--db", url,
                   env=tunesvc_env)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert len(results) >= 2 and len({result["worker"] for result in results}) == 1
    assert len(_workers_of_records(url)) == 1
