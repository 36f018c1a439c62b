#!/usr/bin/env python3
"""Where a tuning job's time goes: a few jobs of a model's tasks run one after another, as
one worker runs them, on a copy of a tuned database (the database named is never written),
each job clocked by stage and MetaSchedule's own profiler.

    scripts/job_profile.py zoo:resnet18 --db sqlite:///r100.sqlite --share 100 \\
        --task fused_conv2d1_add1_relu11 --task fused_winograd2_conv2d10_add7_add8_relu41 \\
        --trials 16 --jobs 2 --out job-profile.json

Each job asks for `--trials` more than the task's slice holds, as a job under a model-level
budget does. Prints a line per job and writes every figure to --out. The process is held
to the share first, as a worker holds its own. Run it on a quiet machine: it times things.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

# The tuner's stages clocked apart from MetaSchedule's search (module attributes of
# `workers.tuner`, wrapped while the script runs).
STAGES = ("_prove_once", "_seed", "seed_from_siblings", "warm_from_neighbours",
          "_warm_cost_model", "verify_best", "_default_run_sec")


@dataclass(frozen=True)
class JobProfile:
    task: str
    job: int
    records_before: int
    wall_sec: float
    measured: int
    stages: dict[str, float]  # the tuner's own stages, seconds
    search: dict[str, float]  # MetaSchedule's profiler scopes, seconds
    rounds: list[int]  # candidates each search round sent for measuring


def _clocked(stages: dict[str, float]) -> None:
    """Wrap the tuner's stages so each call adds its time to `stages`."""
    import workers.tuner as tuner

    def clock(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                stages[name] = stages.get(name, 0.0) + time.perf_counter() - started
        return timed

    for name in STAGES:
        setattr(tuner, name, clock(name, getattr(tuner, name)))


def _scopes(profiler: Any) -> dict[str, float]:
    return {name: round(float(getattr(sec, "value", sec)), 3)
            for name, sec in profiler.get().items() if float(getattr(sec, "value", sec)) > 0}


def _rounds(log_dir: str) -> list[int]:
    logs = list(Path(log_dir).glob("logs/*task_0*"))
    text = logs[0].read_text() if logs else ""
    return [int(n) for n in re.findall(r"Sending (\d+) candidates", text)]


def profile_jobs(model: str, db_copy: str, share: int, names: list[str], trials: int,
                 jobs: int, warm: bool, log_root: Path) -> list[JobProfile]:
    from tvm.s_tir import meta_schedule as ms

    from schedules_db.progress import slice_progress
    from tunesvc.models.sources import load_model
    from tunesvc.pipeline.importer import extract_tasks, to_relax
    from tunesvc.targets import TargetSpec
    from tunesvc.tuning.planning import job_for
    from workers.jobs import SearchConfig
    from workers.shares import Share
    from workers.tuner import run_job
    from workers.warm import start_tools

    at_share = Share("cpu", share)
    cores = at_share.backend.pin_worker(at_share)
    tools = start_tools(len(cores), db_copy, at_share)
    at = TargetSpec("cpu").at(at_share)
    tasks = {t.name: t for t in extract_tasks(to_relax(load_model(model)), at.target)}
    unknown = sorted(set(names) - set(tasks))
    if unknown:
        raise click.UsageError(f"no such task in {model}: {', '.join(unknown)}")
    stages: dict[str, float] = {}
    _clocked(stages)
    found = []
    for name in names:
        for number in range(1, jobs + 1):
            before = slice_progress(tools.store, at.key, tasks[name].shash).records
            job = job_for(at, tasks[name], 0, SearchConfig(trials=before + trials, warm=warm),
                          log_root, number)
            stages.clear()
            started = time.perf_counter()
            with ms.Profiler() as profiler:
                result = run_job(job, cores, "profile", tools)
            if result.error:
                raise click.ClickException(f"{name}: {result.error}")
            found.append(JobProfile(name, number, before, round(time.perf_counter() - started, 2),
                                    result.trials_measured,
                                    {k: round(v, 3) for k, v in stages.items()},
                                    _scopes(profiler), _rounds(job.log_dir)))
            click.echo(_line(found[-1]))
    return found


def _line(job: JobProfile) -> str:
    search = sum(v for k, v in job.search.items() if k.startswith("EvoSearch"))
    build_run = job.search.get("SendToBuilder", 0) + job.search.get("SendToRunner", 0)
    return (f"{job.task} job {job.job} (had {job.records_before}): {job.wall_sec:.1f} s, "
            f"{job.measured} measured; search {search:.1f} s in rounds {job.rounds}, "
            f"build+run {build_run:.1f} s; stages "
            + ", ".join(f"{k} {v:.2f}" for k, v in job.stages.items() if v >= 0.01))


@click.command()
@click.argument("model")
@click.option("--db", required=True, help="A tuned database (copied; never written).")
@click.option("--share", default=100, show_default=True, type=int)
@click.option("--task", "names", multiple=True, required=True, help="A task of the model.")
@click.option("--trials", default=16, show_default=True, type=int, help="Trials a job.")
@click.option("--jobs", default=2, show_default=True, type=int, help="Jobs a task.")
@click.option("--warm/--cold", default=True, show_default=True,
              help="The cost model learns from other workloads' records first.")
@click.option("--out", type=click.Path(dir_okay=False), help="JSON of every figure.")
def main(model: str, db: str, share: int, names: tuple[str, ...], trials: int, jobs: int,
         warm: bool, out: str | None) -> None:
    if not db.startswith("sqlite:///"):
        raise click.UsageError("--db: a SQLite URL (sqlite:///PATH) is copied; others are not")
    source = Path(db.removeprefix("sqlite:///"))
    if not source.is_file():
        raise click.UsageError(f"--db: no such file: {source}")
    work = Path(tempfile.mkdtemp(prefix="job-profile-"))
    shutil.copy(source, work / "copy.sqlite")
    found = profile_jobs(model, f"sqlite:///{work / 'copy.sqlite'}", share, list(names),
                         trials, jobs, warm, work / "logs")
    if out:
        Path(out).write_text(json.dumps([asdict(j) for j in found], indent=1) + "\n")


if __name__ == "__main__":
    main()
