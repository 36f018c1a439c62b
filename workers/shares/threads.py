"""Every thread of a CPU share on the share's cores.

TVM's thread pool pins its threads to cores by index (0, 1, ...) when it starts, whatever
the process's CPU mask, unless TVM_BIND_THREADS is not 1: then it pins nothing and each
thread keeps the mask of the thread that created it. So a share is held by setting the
mask of every thread the process has and telling TVM not to re-pin, and it is proven by
reading every thread's mask after a parallel TVM kernel has run (a pool that has not
started yet has no threads to check).
"""

from __future__ import annotations

import os
from pathlib import Path

BIND_THREADS_ENV = "TVM_BIND_THREADS"
TASKS = Path("/proc/self/task")
_kernels: dict[int, object] = {}  # threads -> a built parallel kernel (built once)


def thread_ids() -> list[int]:
    """The ids of this process's threads (the main thread's is the process id)."""
    return sorted(int(entry.name) for entry in TASKS.iterdir())


def hold_threads(cores: tuple[int, ...]) -> None:
    """Every thread of this process, and every thread started from now on, on `cores`;
    TVM's pool is told to leave them there."""
    os.environ[BIND_THREADS_ENV] = "0"
    for tid in thread_ids():
        try:
            os.sched_setaffinity(tid, cores)
        except (ProcessLookupError, PermissionError):  # a thread that ended meanwhile
            continue


def thread_affinities() -> dict[int, tuple[int, ...]]:
    """Each live thread's CPU mask, by thread id."""
    found: dict[int, tuple[int, ...]] = {}
    for tid in thread_ids():
        try:
            found[tid] = tuple(sorted(os.sched_getaffinity(tid)))
        except ProcessLookupError:
            continue
    return found


def outside(affinities: dict[int, tuple[int, ...]], cores: tuple[int, ...]) -> list[str]:
    """'thread 1234 on cores (0, 1)' for each thread that may run off `cores`."""
    allowed = set(cores)
    return [f"thread {tid} on cores {mask}" for tid, mask in sorted(affinities.items())
            if not set(mask) <= allowed]


def run_parallel_kernel(threads: int) -> None:
    """Run a small TVM kernel split over `threads` threads, so that TVM's thread pool has
    started (and, without TVM_BIND_THREADS=0, re-pinned its threads)."""
    import numpy as np
    import tvm

    kernel = _kernels.get(threads) or _build_parallel_kernel(threads)
    _kernels[threads] = kernel
    data = tvm.runtime.tensor(np.zeros(4096 * threads, dtype="float32"))
    out = tvm.runtime.tensor(np.zeros(4096 * threads, dtype="float32"))
    kernel(data, out)  # type: ignore[operator]


def _build_parallel_kernel(threads: int) -> object:
    import tvm
    from tvm import s_tir, te

    data = te.placeholder((4096 * threads,), "float32", name="data")
    out = te.compute(data.shape, lambda i: data[i] + 1.0, name="out")
    sch = s_tir.Schedule(te.create_prim_func([data, out]))
    loop = sch.get_loops(sch.get_sblock("out"))[0]
    outer, _ = sch.split(loop, [threads, None])
    sch.parallel(outer)
    return tvm.build(sch.mod, target="llvm")
