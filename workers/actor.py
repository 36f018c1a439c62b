"""Ray actors: one tuning worker per (device, share).

Shares are Ray resources, so Ray does the packing: each worker asks for what its share's
backend says (`ShareBackend.ray_resources`), and Ray starts it only where that fits. Once
started, the worker holds its own process to the share before anything else runs in it.
"""

from __future__ import annotations

from typing import Any

import ray

from workers.jobs import TuneJob, TuneResult
from workers.shares import Share
from workers.tuner import refuse_job, run_job
from workers.warm import start_tools


class ShareWorker:
    """Tunes jobs of one share; the process is held to that share for its whole life."""

    def __init__(self, share: Share, name: str, db_url: str) -> None:
        self.share = share
        node = ray.get_runtime_context().get_node_id()[:8]
        self.name = f"{name}@{node}"  # records say which worker, on which node, made them
        self.start_error: str | None = None
        try:
            self.cores = share.backend.pin_worker(share)
            # Started after pinning: the build and measuring processes inherit the share.
            self.tools = start_tools(len(self.cores), db_url, share)
        except Exception as exc:  # reported with the jobs it is given, not lost in Ray's logs
            self.start_error = f"worker could not start: {type(exc).__name__}: {exc}"

    def ready(self) -> str | None:
        """Answers once the worker has started: None, or why it cannot tune."""
        return self.start_error

    def tune(self, job: TuneJob) -> TuneResult:
        if self.start_error is not None:
            return refuse_job(job, self.start_error, self.name)
        return run_job(job, self.cores, self.name, self.tools)


def start_worker(share: Share, name: str, db_url: str,
                 placement: dict[str, float] | None = None) -> Any:
    """Create (not wait for) a worker actor; Ray starts it when its share fits, on a node
    that offers the `placement` custom resources (its CPU, see `tunesvc.cluster.placement`)."""
    backend = share.backend
    actor_class = ray.remote(max_restarts=0, max_concurrency=1)(ShareWorker)
    return actor_class.options(
        name=None,
        runtime_env={"env_vars": backend.worker_env(share)},
        resources=placement or {},
        **backend.ray_resources(share),
    ).remote(share, name, db_url)
