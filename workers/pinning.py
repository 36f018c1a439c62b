"""Holding a process to its share, and proving it from the process that measures.

CPU shares: CPU affinity to a set of cores plus TVM's thread count, both inherited by the
processes MetaSchedule spawns to build and measure. GPU shares: the MPS active-thread
percentage, read by CUDA when the measuring process creates its context; under MPS the
reduced multiprocessor count is visible there, and that is the proof. Nothing is recorded
at a share this module could not prove.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from workers.mps import client_env
from workers.share import MPS_PERCENT_ENV, Share

TVM_THREADS_ENV = "TVM_NUM_THREADS"
# Which GPU's MPS daemon GPU workers talk to (one GPU per tuning run for now).
MPS_GPU_ENV = "TUNESVC_MPS_GPU"
# MPS allocates whole TPCs (2 SMs) and rounds; allow that much slack around percent * SMs.
SM_SLACK_FRACTION = 0.05


@dataclass(frozen=True)
class ShareProbe:
    """What one process sees of its share."""

    affinity: tuple[int, ...]
    tvm_threads: str | None
    mps_percent: str | None
    multiprocessors: int | None
    pid: int = 0


def share_env(share: Share, cores: int | None) -> dict[str, str]:
    """Environment a worker process of `share` must start with (before any CUDA context)."""
    env = {TVM_THREADS_ENV: str(cores if cores else 1)}
    if share.kind == "gpu":
        env[MPS_PERCENT_ENV] = str(share.percent)
        env.update(client_env(os.environ.get(MPS_GPU_ENV, "0")))
    return env


def pin_cpu(cores: tuple[int, ...]) -> None:
    os.sched_setaffinity(0, cores)
    os.environ[TVM_THREADS_ENV] = str(len(cores))


def probe_this_process(with_gpu: bool) -> ShareProbe:
    """Runs inside the measuring process (submitted to the runner's worker pool)."""
    multiprocessors = None
    if with_gpu:
        import tvm

        multiprocessors = int(tvm.cuda(0).multi_processor_count)
    return ShareProbe(
        affinity=tuple(sorted(os.sched_getaffinity(0))),
        tvm_threads=os.environ.get(TVM_THREADS_ENV),
        mps_percent=os.environ.get(MPS_PERCENT_ENV),
        multiprocessors=multiprocessors,
        pid=os.getpid(),
    )


def full_multiprocessor_count() -> int:
    """SMs of GPU 0 as a process without a thread limit sees them (a fresh process)."""
    env = {k: v for k, v in os.environ.items() if k != MPS_PERCENT_ENV}
    code = "import tvm; print(tvm.cuda(0).multi_processor_count)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def check_cpu_share(probe: ShareProbe, cores: tuple[int, ...]) -> str | None:
    """None if the measuring process is held to `cores`, else why not."""
    if probe.affinity != tuple(sorted(cores)):
        return f"measuring process runs on cores {probe.affinity}, expected {sorted(cores)}"
    if probe.tvm_threads != str(len(cores)):
        return f"{TVM_THREADS_ENV}={probe.tvm_threads} in the measuring process, expected {len(cores)}"
    return None


def check_gpu_share(share: Share, probe: ShareProbe, full_sms: int) -> str | None:
    """None if the measuring process demonstrably runs at `share`, else why not."""
    seen = probe.multiprocessors
    if seen is None:
        return "the measuring process reported no multiprocessor count"
    if share.percent == 100:
        return None if seen == full_sms else f"100% share sees {seen} of {full_sms} SMs"
    if probe.mps_percent != str(share.percent):
        return f"{MPS_PERCENT_ENV}={probe.mps_percent} in the measuring process, expected {share.percent}"
    if seen >= full_sms:
        return (f"no MPS control daemon limits this process: it sees all {full_sms} SMs at a "
                f"{share.percent}% share (start one with scripts/mps.sh start)")
    expected = full_sms * share.percent / 100
    if abs(seen - expected) > max(2.0, SM_SLACK_FRACTION * full_sms):
        return f"{share.percent}% share sees {seen} SMs, expected about {expected:.0f} of {full_sms}"
    return None
