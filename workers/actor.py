"""Ray actors: one tuning worker per (device, share), and the ledger of CPU cores.

Shares are Ray resources, so Ray does the packing: a CPU worker asks for as many CPUs as
its share has cores, a GPU worker for `percent/100` of a GPU (Ray places fractions of one
GPU so they never add up to more than 1). Ray does not say *which* cores, so the
`CoreLedger` hands out disjoint core sets for CPU affinity.
"""

from __future__ import annotations

from typing import Any

import ray

from workers.jobs import TuneJob, TuneResult
from workers.pinning import pin_cpu, share_env
from workers.share import Share
from workers.tuner import run_job

GPU_WORKER_CPUS = 1  # a GPU worker still builds candidates on the host


@ray.remote(num_cpus=0)
class CoreLedger:
    """Which of this machine's cores each CPU worker holds."""

    def __init__(self, cores: list[int]) -> None:
        self._free = sorted(cores)
        self._held: dict[str, list[int]] = {}

    def acquire(self, owner: str, count: int) -> list[int]:
        if count > len(self._free):
            raise RuntimeError(f"{owner} needs {count} cores, {len(self._free)} are free")
        taken, self._free = self._free[:count], self._free[count:]
        self._held[owner] = taken
        return taken

    def release(self, owner: str) -> None:
        self._free = sorted(self._free + self._held.pop(owner, []))


class ShareWorker:
    """Tunes jobs of one share; the process is pinned to that share for its whole life."""

    def __init__(self, share: Share, name: str, ledger: Any, core_count: int) -> None:
        self.share = share
        self.name = name
        self.cores: tuple[int, ...] = ()
        if share.kind == "cpu":
            self.cores = tuple(ray.get(ledger.acquire.remote(name, core_count)))
            pin_cpu(self.cores)

    def tune(self, job: TuneJob) -> TuneResult:
        return run_job(job, self.cores, self.name)


def start_worker(share: Share, name: str, ledger: Any, machine_cores: int) -> Any:
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
    ).remote(share, name, ledger, core_count)
