"""How the coordinator sizes share pools: never more workers of a share than fit one device."""

from __future__ import annotations

from tunesvc.tuning.dispatch import workers_for
from workers.shares import Share
from workers.shares.cpu import CpuBackend


def test_four_gpu_workers_at_25_percent_tune_side_by_side() -> None:
    assert workers_for(Share("gpu", 25), jobs=19) == 4
    assert workers_for(Share("gpu", 30), jobs=19) == 3  # 90%, not 120%
    assert workers_for(Share("gpu", 100), jobs=19) == 1


def test_cpu_pools_fill_the_cores_and_never_exceed_the_jobs() -> None:
    assert workers_for(Share("cpu", 50), jobs=19, backend=CpuBackend(machine=2)) == 2
    assert workers_for(Share("cpu", 25), jobs=19, backend=CpuBackend(machine=16)) == 4
    assert workers_for(Share("cpu", 50), jobs=1, backend=CpuBackend(machine=16)) == 1
    # 33% of 2 cores is one core: two such workers fit, as for 50%
    assert workers_for(Share("cpu", 33), jobs=19, backend=CpuBackend(machine=2)) == 2
