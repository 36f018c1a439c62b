"""CPU shares: a percentage of the machine's cores, held by CPU affinity plus TVM's
thread count (both inherited by the processes MetaSchedule spawns to build and measure).

This module alone turns a percentage into cores, so `tune`, `run` and the Python API map a
share to the same cores and say what it became ('cpu:33% = 1 of 2 cores (50%)').
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workers.shares.core_claims import busy_message, claim_cores, live_claims, unclaimed
from workers.shares.threads import hold_threads, outside, run_parallel_kernel, thread_affinities
from workers.shares.base import (
    TVM_THREADS_ENV,
    RunInMeasurer,
    Share,
    ShareBackend,
    ShareError,
    ShareProbe,
    probe_this_process,
)

# The cores this process was started with: a share is taken from these, however the
# process has been held since.
PROCESS_CORES: tuple[int, ...] = tuple(sorted(os.sched_getaffinity(0)))
COLD_RUNS = 10  # timed runs per candidate, each after a cache flush
CPUSET_FILES = ("/sys/fs/cgroup/cpuset.cpus.effective", "/sys/fs/cgroup/cpuset/cpuset.cpus")


def machine_cores() -> int:
    """Cores of this machine (its container's cpuset where one is set), not of this
    process: a process started under `taskset` on one core of two runs at 50%."""
    for path in CPUSET_FILES:
        cores = _cpu_list(Path(path))
        if cores:
            return len(cores)
    return os.cpu_count() or len(PROCESS_CORES)


def core_count(share: Share, machine: int | None = None) -> int:
    """Cores a share of this machine (or of one with `machine` cores) gets: rounded to the
    nearest whole core; below half a core is an error rather than silently a bigger share
    than asked for."""
    machine = machine or machine_cores()
    cores = math.floor(machine * share.percent / 100 + 0.5)
    if cores < 1:
        raise ShareError(f"share {share.percent}% of {machine} cores is less than one core; "
                         f"the smallest CPU share here is {math.ceil(50 / machine)}%")
    return cores


def share_cores(share: Share, available: tuple[int, ...] = PROCESS_CORES,
                machine: int | None = None) -> tuple[int, ...]:
    """Which cores a process at `share` runs on: the first of those it was started with
    (`available`, on a machine of `machine` cores: this process's by default)."""
    machine = machine or machine_cores()
    count = core_count(share, machine)
    if count > len(available):
        raise ShareError(f"{share.label} is {count} of {machine} cores, but this "
                         f"process may only use {len(available)} (cores "
                         f"{_ranges(available)}; started under taskset or a cpuset?)")
    return tuple(sorted(available))[:count]


def pin_cpu(cores: tuple[int, ...], threads: int | None = None) -> None:
    """Hold every thread of this process (and of the processes it starts) to `cores`, with
    `threads` TVM threads (one per core unless told otherwise)."""
    hold_threads(cores)
    os.environ[TVM_THREADS_ENV] = str(threads or len(cores))


def probe_cpu_threads(threads: int) -> ShareProbe:
    """Runs inside the measuring process: its share as seen after a parallel kernel."""
    run_parallel_kernel(threads)
    probe = probe_this_process(False)
    strays = outside(thread_affinities(), probe.affinity)
    return ShareProbe(probe.affinity, probe.tvm_threads, probe.mps_percent,
                      probe.multiprocessors, probe.pid, tuple(strays))


def check_cpu_share(probe: ShareProbe, cores: tuple[int, ...]) -> str | None:
    """None if the measuring process and every thread of it are held to `cores`, else
    why not."""
    if probe.affinity != tuple(sorted(cores)):
        return f"measuring process runs on cores {probe.affinity}, expected {sorted(cores)}"
    if probe.tvm_threads != str(len(cores)):
        return (f"{TVM_THREADS_ENV}={probe.tvm_threads} in the measuring process, expected "
                f"{len(cores)}")
    if probe.threads_outside:
        return (f"measuring process has threads off its cores {sorted(cores)}: "
                f"{', '.join(probe.threads_outside)}")
    return None


class CpuBackend(ShareBackend):
    kind = "cpu"
    target_kinds = ("llvm",)

    def __init__(self, machine: int | None = None) -> None:
        self._machine = machine  # None: this machine; a number to plan for another

    @property
    def machine(self) -> int:
        return self._machine or machine_cores()

    def cores(self, share: Share) -> int:
        return core_count(share, self.machine)

    def validate(self, share: Share) -> None:
        share_cores(share)

    def describe(self, share: Share) -> str:
        count, machine = self.cores(share), self.machine
        effective = round(100 * count / machine)
        tail = "" if effective == share.percent else f" ({effective}%)"
        return f"{share.label} = {count} of {machine} cores{tail}"

    def busy_here(self, share: Share) -> str | None:
        try:
            share_cores(share)
        except ShareError as exc:
            return str(exc)
        held = live_claims()
        free = unclaimed(PROCESS_CORES, held)
        needed = self.cores(share)
        return None if needed <= len(free) else busy_message(needed, len(free), held)

    def ray_resources(self, share: Share) -> dict[str, float]:
        return {"num_cpus": self.cores(share)}

    def per_device(self, share: Share) -> int:
        return max(1, self.machine // self.cores(share))

    def worker_env(self, share: Share) -> dict[str, str]:
        return {TVM_THREADS_ENV: str(self.cores(share))}

    def pin_worker(self, share: Share) -> tuple[int, ...]:
        # Ray counts CPUs but does not say which: workers claim disjoint cores on the node.
        cores = claim_cores(self.cores(share))
        pin_cpu(cores)
        return cores

    def prove(self, share: Share, run_in_measurer: RunInMeasurer,
              cores: tuple[int, ...]) -> tuple[str | None, int]:
        probe = run_in_measurer(probe_cpu_threads, len(cores))
        return check_cpu_share(probe, cores), probe.pid

    def commit_guard(self, share: Share) -> Callable[[], None] | None:
        return None

    def current(self) -> Share:
        held = len(os.sched_getaffinity(0))
        return Share(self.kind, max(1, min(100, round(100 * held / self.machine))))

    def hold(self, share: Share) -> None:
        pin_cpu(share_cores(share))

    def host_threads(self, share: Share) -> int | None:
        return self.cores(share)

    def evaluator(self) -> Any:
        # Inside a model an operator's weights arrive from memory; measured hot (repeated
        # for 100 ms, MetaSchedule's default) a kernel ran 1.2-2.6x faster than with the
        # cache flushed, and one noisy run picked as "best" misleads: 10 cold runs each.
        from tvm.s_tir.meta_schedule.runner import EvaluatorConfig

        return EvaluatorConfig(number=1, repeat=COLD_RUNS, min_repeat_ms=0,
                               enable_cpu_cache_flush=True)

    def target_attrs(self, share: Share) -> dict[str, Any]:
        return {"num-cores": self.cores(share)}


def _cpu_list(path: Path) -> list[int]:
    """'0-3,8' -> [0, 1, 2, 3, 8]; [] if the file is absent or empty."""
    try:
        text = path.read_text().strip()
    except OSError:
        return []
    cores: list[int] = []
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        cores += range(int(low), int(high or low) + 1)
    return cores


def _ranges(cores: tuple[int, ...]) -> str:
    return ",".join(map(str, cores))
