"""Ray actors: one tuning worker per (device, share).

Shares are Ray resources, so Ray does the packing: a CPU worker asks for as many CPUs as
its share has cores, a GPU worker for `percent/100` of a GPU (Ray places fractions of one
GPU so they never add up to more than 1). Ray does not say *which* cores, so a CPU worker
claims disjoint cores on its node (`workers.cores`).
"""

from __future__ import annotations

from typing import Any

import ray

from workers.cores import claim_cores
from workers.jobs import TuneJob, TuneResult
from workers.pinning import pin_cpu, share_env
from workers.share import Share
from workers.tuner import run_job
from workers.warm import start_tools

GPU_WORKER_CPUS = 1  # a GPU worker still builds candidates on the host


class ShareWorker:
    """Tunes jobs of one share; the process is pinned to that share for its whole life."""

    def __init__(self, share: Share, name: str, core_count: int) -> None:
        self.share = share
        node = ray.get_runtime_context().get_node_id()[:8]
        self.name = f"{name}@{node}"  # records say which worker, on which node, made them
        self.cores: tuple[int, ...] = ()
        if share.kind == "cpu":
            self.cores = claim_cores(core_count)
            pin_cpu(self.cores)
        # Started after pinning: the build and measuring processes inherit the share.
        self.tools = start_tools(len(self.cores))

    def tune(self, job: TuneJob) -> TuneResult:
        return run_job(job, self.cores, self.name, self.tools)


def start_worker(share: Share, name: str, machine_cores: int) -> Any:
    """Create (not wait for) a worker actor; Ray starts it when its share fits."""
    core_count = share.core_count(machine_cores) if share.kind == "cpu" else 0
    resources: dict[str, Any] = (
        {"num_cpus": core_count}
        if share.kind == "cpu"
        else {"num_cpus": GPU_WORKER_CPUS, "num_gpus": share.gpu_fraction()}
    )
    actor_class = ray.remote(max_restarts=0, max_concurrency=1)(ShareWorker)
    return actor_class.options(
        name=None,
        runtime_env={"env_vars": share_env(share, core_count)},
        **resources,
    ).remote(share, name, core_count)
