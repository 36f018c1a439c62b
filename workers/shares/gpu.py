"""GPU shares: the MPS active-thread percentage of one GPU, read by CUDA when a process
creates its context. Under MPS the reduced multiprocessor count is visible in the process
that measures, and that is the proof; a faulted MPS server stops all recording.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from workers.shares import mps_daemon
from workers.shares.base import (
    MPS_PERCENT_ENV,
    TVM_THREADS_ENV,
    RunInMeasurer,
    Share,
    ShareBackend,
    ShareProbe,
    parse_percent,
    probe_this_process,
)

# Which GPU's MPS daemon GPU workers talk to (one GPU per tuning run for now).
MPS_GPU_ENV = "TUNESVC_MPS_GPU"
# MPS allocates whole TPCs (2 SMs) and rounds; allow that much slack around percent * SMs.
SM_SLACK_FRACTION = 0.05
WORKER_CPUS = 1  # a GPU worker still builds candidates on the host


class ShareFault(RuntimeError):
    """Measurements at the share can no longer be trusted."""


def full_multiprocessor_count() -> int:
    """SMs of GPU 0 as a process without a thread limit sees them (a fresh process)."""
    env = {k: v for k, v in os.environ.items() if k != MPS_PERCENT_ENV}
    code = "import tvm; print(tvm.cuda(0).multi_processor_count)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return int(out.stdout.strip().splitlines()[-1])


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
                f"{share.percent}% share (start one with scripts/mps.py start)")
    expected = full_sms * share.percent / 100
    if abs(seen - expected) > max(2.0, SM_SLACK_FRACTION * full_sms):
        return f"{share.percent}% share sees {seen} SMs, expected about {expected:.0f} of {full_sms}"
    return None


class GpuBackend(ShareBackend):
    kind = "gpu"
    target_kinds = ("cuda",)

    def validate(self, share: Share) -> None:
        return None  # any percentage 1..100 exists; MPS rounds it to whole TPCs

    def describe(self, share: Share) -> str:
        return f"{share.label} of GPU {os.environ.get(MPS_GPU_ENV, '0')}'s threads (MPS)"

    def busy_here(self, share: Share) -> str | None:
        return None  # MPS shares one GPU between runs; Ray packs a run's own workers

    def ray_resources(self, share: Share) -> dict[str, float]:
        # Ray places fractions of one GPU so they never add up to more than 1.
        return {"num_cpus": WORKER_CPUS, "num_gpus": share.percent / 100}

    def per_device(self, share: Share) -> int:
        return max(1, 100 // share.percent)

    def worker_env(self, share: Share) -> dict[str, str]:
        return {TVM_THREADS_ENV: str(WORKER_CPUS), MPS_PERCENT_ENV: str(share.percent),
                **mps_daemon.client_env(os.environ.get(MPS_GPU_ENV, "0"))}

    def pin_worker(self, share: Share) -> tuple[int, ...]:
        return ()  # the MPS limit came with the environment the worker started with

    def prove(self, share: Share, run_in_measurer: RunInMeasurer,
              cores: tuple[int, ...]) -> tuple[str | None, int]:
        probe = run_in_measurer(probe_this_process, True)
        return check_gpu_share(share, probe, full_multiprocessor_count()), probe.pid

    def commit_guard(self, share: Share) -> Callable[[], None] | None:
        paths = mps_daemon.paths_for(os.environ.get(MPS_GPU_ENV, "0"))

        def refuse_if_faulted() -> None:
            if mps_daemon.server_faulted(paths):
                raise ShareFault(f"MPS server of GPU {paths.gpu} is in a fault state "
                                 f"(see {paths.log_dir / 'control.log'}); not recording")

        return refuse_if_faulted

    def current(self) -> Share:
        return Share(self.kind, parse_percent(os.environ.get(MPS_PERCENT_ENV, "100")))

    def hold(self, share: Share) -> None:
        # Takes effect only if this process has no CUDA context yet.
        os.environ[MPS_PERCENT_ENV] = str(share.percent)

    def host_threads(self, share: Share) -> int | None:
        return None

    def evaluator(self) -> Any:
        from tvm.s_tir.meta_schedule.runner import EvaluatorConfig

        return EvaluatorConfig()  # MetaSchedule's default; not measured on a GPU here

    def target_attrs(self, share: Share) -> dict[str, Any]:
        return {}
