"""Every thread of a CPU share stays on the share's cores.

The escape is reproduced as a 2-core share on cores 2-3 of a larger machine would meet it:
a process held to core 1 running two TVM threads. TVM's pool pins its threads by core
index, so without the hold one of them ends up on core 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from workers.shares import Share, ShareError, ShareProbe
from workers.shares.cpu import check_cpu_share, share_cores

needs_two_cores = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                                     reason="needs two cores to leave one")

SCRIPT = """
import json, os, sys
from workers.shares import threads
from workers.shares.cpu import pin_cpu
if sys.argv[1] == "hold":
    pin_cpu((1,), threads=2)
else:  # what a process held by its CPU mask alone does
    os.sched_setaffinity(0, (1,))
    os.environ["TVM_NUM_THREADS"] = "2"
threads.run_parallel_kernel(2)
print(json.dumps({str(t): list(m) for t, m in threads.thread_affinities().items()}))
"""


def _affinities_after_a_parallel_kernel(mode: str) -> dict[str, list[int]]:
    env = {k: v for k, v in os.environ.items() if k != "TVM_BIND_THREADS"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_two_cores
def test_a_held_share_keeps_every_thread_on_its_cores() -> None:
    held = _affinities_after_a_parallel_kernel("hold")
    assert len(held) >= 2  # the main thread and TVM's worker
    assert all(mask == [1] for mask in held.values()), held


@needs_two_cores
def test_a_mask_alone_lets_tvm_threads_escape_and_the_proof_sees_it() -> None:
    escaped = _affinities_after_a_parallel_kernel("mask-only")
    strays = [f"thread {t} on cores {tuple(m)}" for t, m in escaped.items() if m != [1]]
    assert strays, f"TVM's pool no longer re-pins its threads: {escaped}"
    probe = ShareProbe((1,), "1", None, None, 0, tuple(strays))
    problem = check_cpu_share(probe, (1,))
    assert problem is not None and "threads off its cores" in problem


def test_shares_map_to_the_first_cores_the_process_was_given() -> None:
    """On an 8-core machine, a process started on cores 2-7."""
    available = (2, 3, 4, 5, 6, 7)
    assert share_cores(Share("cpu", 25), available, machine=8) == (2, 3)
    assert share_cores(Share("cpu", 50), available, machine=8) == (2, 3, 4, 5)
    with pytest.raises(ShareError, match="may only use 6"):
        share_cores(Share("cpu", 100), available, machine=8)
