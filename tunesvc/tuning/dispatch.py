"""The coordinator: spread task x share jobs over share-pinned Ray workers.

It plans one job per (task, share), starts a small pool of workers per share (Ray packs
them so a device is never over-committed), hands each idle worker the next job of its
share, and reports every result as it arrives. It never measures anything itself and
never raises for a job's failure: failures are results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from tunesvc.cluster import connect
from tunesvc.tuning.estimate import Part, estimated_latency
from tunesvc.errors import UserError, first_line
from tunesvc.tuning.interrupts import WAIT_POLL_SEC, raise_if_interrupted
from tunesvc.tuning.job_sources import JobSource
from workers.actor import start_worker
from workers.jobs import TuneJob, TuneResult
from workers.shares import Share, ShareBackend

MAX_ATTEMPTS = 3  # a job whose worker dies this often is reported, not retried forever


def connect_ray(address: str | None, machine_cores: int) -> str:
    """Join `address` / RAY_ADDRESS if given (UserError if it is not a cluster that
    answers), else start a local Ray; says which."""
    if ray.is_initialized():
        return "existing Ray"
    common: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING"}
    cluster = connect.given(address)
    if cluster is None:
        ray.init(num_cpus=machine_cores, include_dashboard=False, **common)
        return f"local Ray ({machine_cores} CPUs)"
    connect.check_cluster_address(*cluster)
    try:
        ray.init(address=cluster[0], **common)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        reason = first_line(exc)
        raise UserError(f"cannot join the Ray cluster at {cluster[0]} (from {cluster[1]}): "
                        f"{reason}") from None
    return f"Ray cluster at {cluster[0]}"


def workers_for(share: Share, jobs: int, backend: ShareBackend | None = None,
                most: int | None = None) -> int:
    """How many workers of one share fit on one device at once (never more than jobs,
    nor than `most` when given)."""
    return max(1, min(jobs, (backend or share.backend).per_device(share), most or jobs))


@dataclass
class _Pool:
    """The workers of one share: running a job, or idle until the source has one."""

    source: JobSource
    running: int = 0
    idle: list[_Worker] = field(default_factory=list)
    started: int = 0

    @property
    def share(self) -> Share:
        return self.source.share


@dataclass(frozen=True)
class _Worker:
    name: str
    handle: Any


class Dispatcher:
    """Runs the jobs of every share's source on share pools until all sources are done."""

    def __init__(self, db_url: str, placement: dict[str, float] | None = None,
                 most_workers: int | None = None) -> None:
        self.db_url = db_url  # given to each worker once, not carried by every job
        self.placement = placement or {}  # custom resources that pick the right nodes
        self.most_workers = most_workers  # per share at once; None: as many as fit
        self._in_flight: dict[Any, tuple[_Worker, TuneJob, _Pool]] = {}

    def run(self, sources: list[JobSource], on_result: Callable[[TuneResult], None],
            when_ready: Callable[[], None] | None = None) -> list[TuneResult]:
        """Every source's jobs, run to the end. `when_ready` is called once the first
        workers have started, if any of them can tune, before any job is handed out."""
        results: list[TuneResult] = []
        started = [(self._new_worker(pool), pool) for pool in (_Pool(s) for s in sources)
                   for _ in range(workers_for(pool.share, pool.source.parallelism(),
                                              most=self.most_workers))]
        if when_ready is not None and _any_ready([worker for worker, _ in started]):
            when_ready()
        for worker, pool in started:
            self._give_work(worker, pool)
        while self._in_flight:
            ref = _next_ready(list(self._in_flight))
            worker, job, pool = self._in_flight.pop(ref)
            pool.running -= 1
            result, worker_alive = self._collect(ref, job)
            if result.worker_unusable:
                self._retire(worker, result, job, pool, results, on_result)
                continue
            if not worker_alive and job.attempt < MAX_ATTEMPTS:
                # The records the lost worker committed stay; the retry measures the rest.
                pool.source.give_back(replace(job, attempt=job.attempt + 1))
            else:
                self._report(result, pool, results, on_result)
            if not worker_alive:
                ray.kill(worker.handle)
                worker = self._new_worker(pool)
            self._give_work(worker, pool)
            self._wake_idle(pool)
        return results

    @staticmethod
    def _report(result: TuneResult, pool: _Pool, results: list[TuneResult],
                on_result: Callable[[TuneResult], None]) -> None:
        pool.source.finished(result)
        results.append(result)
        on_result(result)

    def _retire(self, worker: _Worker, result: TuneResult, job: TuneJob, pool: _Pool,
                results: list[TuneResult], on_result: Callable[[TuneResult], None]) -> None:
        """A worker that could not start gets no more jobs, nor a successor (it would
        likely fail the same way). Its share's other workers take its job; if it was the
        last, the share's jobs fail with its cause, at once."""
        ray.kill(worker.handle)
        if pool.running > 0 or pool.idle:
            pool.source.give_back(job)
            self._wake_idle(pool)
            return
        self._report(result, pool, results, on_result)
        while (left := pool.source.next_job()) is not None:
            failed = TuneResult.failure(left, result.error or "worker could not start")
            self._report(failed, pool, results, on_result)

    def _new_worker(self, pool: _Pool) -> _Worker:
        pool.started += 1
        name = f"{pool.share.slug}-w{pool.started}"
        return _Worker(name, start_worker(pool.share, name, self.db_url, self.placement))

    def _give_work(self, worker: _Worker, pool: _Pool) -> None:
        """The share's next job for this worker; else it waits while other jobs of its
        share run (they may free budget), or goes (its cores lapse with it)."""
        job = pool.source.next_job()
        if job is not None:
            pool.running += 1
            self._in_flight[worker.handle.tune.remote(job)] = (worker, job, pool)
        elif pool.running > 0:
            pool.idle.append(worker)
        else:
            for done in [worker, *pool.idle]:
                ray.kill(done.handle)
            pool.idle.clear()

    def _wake_idle(self, pool: _Pool) -> None:
        waiting, pool.idle = pool.idle, []
        for worker in waiting:
            self._give_work(worker, pool)

    def _collect(self, ref: Any, job: TuneJob) -> tuple[TuneResult, bool]:
        """The job's result, and whether its worker is still usable."""
        try:
            return ray.get(ref), True
        except (RayActorError, RayTaskError) as exc:
            error = (f"worker lost {job.attempt} times, last: {type(exc).__name__}: "
                     f"{str(exc).splitlines()[0]}")
            return TuneResult.failure(job, error), False


def _next_ready(refs: list[Any]) -> Any:
    """The first of `refs` to finish; KeyboardInterrupt as soon as Ctrl-C was noted."""
    while True:
        ready, _ = ray.wait(refs, num_returns=1, timeout=WAIT_POLL_SEC)
        raise_if_interrupted()
        if ready:
            return ready[0]


def _any_ready(workers: list[_Worker]) -> bool:
    """Waits until one worker has started and can tune (True), or every one has failed to
    (False). Not for all: Ray may start some only when others are gone."""
    pending = [worker.handle.ready.remote() for worker in workers]
    while pending:
        answer = _next_ready(pending)
        pending.remove(answer)
        try:
            if ray.get(answer) is None:
                return True
        except (RayActorError, RayTaskError):
            continue  # died while starting: its jobs are retried, then reported
    return False


@dataclass(frozen=True)
class ShareSummary:
    """One row of the final table of `tunesvc tune`."""

    share: Share
    tasks_tuned: int
    tasks_failed: int
    trials_measured: int
    tuned_latency_sec: float | None
    untuned_latency_sec: float | None
    tuning_wall_sec: float  # first job started to last job finished, this run only

    @property
    def trials_per_minute(self) -> float | None:
        if self.tuning_wall_sec <= 0:
            return None
        return 60.0 * self.trials_measured / self.tuning_wall_sec

    @property
    def speedup(self) -> float | None:
        if not self.tuned_latency_sec or not self.untuned_latency_sec:
            return None
        return self.untuned_latency_sec / self.tuned_latency_sec


def summarize(results: list[TuneResult]) -> list[ShareSummary]:
    """Per share: estimated end-to-end latency = sum over tasks of weight x kernel latency,
    with the best tuned kernel, and with TVM's default schedule."""
    by_share: dict[Share, list[TuneResult]] = {}
    for result in results:
        by_share.setdefault(result.share, []).append(result)
    return [_summary(share, by_share[share]) for share in sorted(by_share)]


def _summary(share: Share, results: list[TuneResult]) -> ShareSummary:
    latest = list(_latest_per_task(results).values())
    tuned = [r for r in latest if r.ok and r.best_run_sec is not None]
    return ShareSummary(
        share=share,
        tasks_tuned=len(tuned),
        tasks_failed=len(latest) - len(tuned),
        trials_measured=sum(r.trials_measured for r in results),
        tuned_latency_sec=_weighted(latest, lambda r: r.best_run_sec or r.default_run_sec),
        # TVM's default is the model as imported: direct convolutions only
        untuned_latency_sec=_weighted([r for r in latest if r.task_group in ("", r.task_shash)],
                                      lambda r: r.default_run_sec),
        tuning_wall_sec=_span(results),
    )


def _latest_per_task(results: list[TuneResult]) -> dict[str, TuneResult]:
    """Under a budget a task gets several jobs; its latest result says where it stands
    (a failed later job keeps the best an earlier one found)."""
    latest: dict[str, TuneResult] = {}
    for result in results:
        earlier = latest.get(result.task_shash)
        if earlier is None or result.ok or not earlier.ok:
            latest[result.task_shash] = result
    return latest


def _span(results: list[TuneResult]) -> float:
    ran = [r for r in results if r.finished_at > 0]
    if not ran:
        return 0.0
    return max(r.finished_at for r in ran) - min(r.started_at for r in ran)


def _weighted(results: list[TuneResult], latency: Callable[[TuneResult], float | None]) -> float | None:
    return estimated_latency(Part.of_result(r, r.weight, latency(r)) for r in results)
