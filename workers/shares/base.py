"""A resource share, and the contract every kind of share implements.

A share is `percent` of one device of some kind: of a GPU's threads, of a machine's CPU
cores. Everything that differs between kinds (what a worker asks Ray for, how a process is
held to a share and proven to run at it, how many fit on one device) is a `ShareBackend`;
`workers.shares.BACKENDS` maps each kind to its backend, and nothing outside this package
asks which kind a share is. Describing a share never touches the process; only `pin_worker`
and `hold` do.
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

TVM_THREADS_ENV = "TVM_NUM_THREADS"
MPS_PERCENT_ENV = "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"

# Each kind of share and its backend ("module:class"), imported when first asked for: a new
# kind of share (a MIG slice, another accelerator) is one new module and one line here.
BACKEND_CLASSES = {"cpu": "workers.shares.cpu:CpuBackend",
                   "gpu": "workers.shares.gpu:GpuBackend"}
_backends: dict[str, ShareBackend] = {}


def backend_of(kind: str) -> ShareBackend:
    """The one backend instance of `kind` (a kind `BACKEND_CLASSES` names)."""
    if kind not in _backends:
        module, _, name = BACKEND_CLASSES[kind].partition(":")
        _backends[kind] = getattr(importlib.import_module(module), name)()
    return _backends[kind]


class ShareError(ValueError):
    """A share that cannot exist (here): out of range, unknown kind, too small."""


@dataclass(frozen=True, order=True)
class Share:
    """`percent` of one device of `kind`."""

    kind: str
    percent: int

    def __post_init__(self) -> None:
        if self.kind not in BACKEND_CLASSES:
            raise ShareError(f"unknown share kind {self.kind!r}; expected one of "
                             f"{tuple(BACKEND_CLASSES)}")
        if isinstance(self.percent, bool) or not isinstance(self.percent, int):
            raise ShareError(f"share must be a whole percentage, got {self.percent!r}")
        if not 1 <= self.percent <= 100:
            raise ShareError(f"share {self.percent}% is out of range: shares are 1..100 percent")

    @property
    def label(self) -> str:
        """How people read it: `cpu:50%`."""
        return f"{self.kind}:{self.percent}%"

    @property
    def slug(self) -> str:
        """How ids and folder names carry it: `cpu50`."""
        return f"{self.kind}{self.percent}"

    @property
    def backend(self) -> ShareBackend:
        return backend_of(self.kind)


@dataclass(frozen=True)
class ShareProbe:
    """What one process sees of its share (collected inside the measuring process)."""

    affinity: tuple[int, ...]
    tvm_threads: str | None
    mps_percent: str | None
    multiprocessors: int | None
    pid: int = 0
    # CPU shares: every thread whose mask leaves the process's, read after a parallel
    # TVM kernel ran ('thread 1234 on cores (0, 1)')
    threads_outside: tuple[str, ...] = ()


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


RunInMeasurer = Callable[[Callable[..., Any], Any], Any]  # (function, argument) -> its result


class ShareBackend(ABC):
    """How shares of one kind are requested, held, proven and described.

    Every method takes the share it is about; none keeps state between calls except what
    the process itself holds (its affinity, its environment). Methods that describe a share
    (`validate`, `describe`, `ray_resources`, `per_device`, `worker_env`, `host_threads`,
    `target_attrs`) never change the calling process; `pin_worker` and `hold` do.
    """

    kind: ClassVar[str]
    target_kinds: ClassVar[tuple[str, ...]]  # TVM target kinds that run on this device

    @abstractmethod
    def validate(self, share: Share) -> None:
        """ShareError if `share` cannot exist on this machine (e.g. less than one core)."""

    @abstractmethod
    def describe(self, share: Share) -> str:
        """What the share is here, e.g. 'cpu:33% = 1 of 2 cores (50%)'."""

    @abstractmethod
    def busy_here(self, share: Share) -> str | None:
        """Why a worker of this share cannot start on this machine now (another run holds
        the device), or None. Asked before a local run starts, so it fails at once."""

    @abstractmethod
    def ray_resources(self, share: Share) -> dict[str, float]:
        """Ray actor options (num_cpus, num_gpus, ...) a worker of this share asks for."""

    @abstractmethod
    def per_device(self, share: Share) -> int:
        """How many workers of this share fit on one device at once."""

    @abstractmethod
    def worker_env(self, share: Share) -> dict[str, str]:
        """Environment a worker process must start with (before any device context)."""

    @abstractmethod
    def pin_worker(self, share: Share) -> tuple[int, ...]:
        """Inside a new worker: claim and hold this process to the share, before its build
        and measuring processes start (they inherit it). Returns the cores it holds, which
        also size its build pool."""

    @abstractmethod
    def prove(self, share: Share, run_in_measurer: RunInMeasurer,
              cores: tuple[int, ...]) -> tuple[str | None, int]:
        """Ask the measuring process what it runs at: (why it is not at `share` or None,
        its pid). Nothing is recorded at a share that was not proven."""

    @abstractmethod
    def commit_guard(self, share: Share) -> Callable[[], None] | None:
        """Called before each commit; raises if measurements at the share can no longer
        be trusted (None: nothing to check)."""

    @abstractmethod
    def current(self) -> Share:
        """The share this process runs at now."""

    @abstractmethod
    def hold(self, share: Share) -> None:
        """Hold this process to `share` from now on (a model about to run at it)."""

    @abstractmethod
    def host_threads(self, share: Share) -> int | None:
        """CPU threads a model at this share runs with (None: it does not run on CPU
        threads, so CPU engines such as onnxruntime are not a like-for-like reference)."""

    @abstractmethod
    def evaluator(self) -> Any:
        """How the measuring process times a candidate (a MetaSchedule EvaluatorConfig):
        as close as it can to how the operator runs inside a model."""

    @abstractmethod
    def target_attrs(self, share: Share) -> dict[str, Any]:
        """TVM target attributes a share sets (e.g. the CPU target's num-cores)."""


def parse_percent(text: str) -> int:
    """'50' or '50%' -> 50; anything else is a ShareError naming the bad value."""
    stripped = text.strip().removesuffix("%")
    try:
        value = int(stripped)
    except ValueError:
        raise ShareError(f"share {text!r} is not a whole percentage (1..100)") from None
    if not 1 <= value <= 100:
        raise ShareError(f"share {value}% is out of range: shares are 1..100 percent")
    return value


def parse_shares(text: str, kind: str) -> list[Share]:
    """A comma-separated list such as '25,50,100' -> sorted, de-duplicated shares."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ShareError("no shares given; pass percentages such as --shares 50,100")
    return sorted({Share(kind, parse_percent(part)) for part in parts})
