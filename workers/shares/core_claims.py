"""Which cores of this node a CPU-share worker runs on.

Ray counts CPUs per node but does not say which cores a worker should use, so workers
claim cores themselves: under a file lock on the node, a worker takes cores no live worker
holds and leaves a claim file named by its pid. A claim lapses when its process is gone
(killed workers included), so nothing has to be released and nothing leaks.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import psutil

CLAIMS_ENV = "TUNESVC_CORE_CLAIMS"
DEFAULT_CLAIMS_DIR = "/tmp/tunesvc-core-claims"
CLAIM_WAIT_SEC = 30.0


def claims_dir() -> Path:
    folder = Path(os.environ.get(CLAIMS_ENV, DEFAULT_CLAIMS_DIR))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def claim_cores(count: int, wait_sec: float = CLAIM_WAIT_SEC) -> tuple[int, ...]:
    """Claim `count` cores nobody else holds on this node, for this process.

    Waits up to `wait_sec` for cores to free up: Ray may start a worker while the one it
    replaces is still exiting.
    """
    deadline = time.monotonic() + wait_sec
    while True:
        try:
            return _try_claim(count)
        except CoresBusy:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


class CoresBusy(RuntimeError):
    """Fewer unclaimed cores than asked for."""


def _try_claim(count: int) -> tuple[int, ...]:
    folder = claims_dir()
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        held = _claims_by_pid(folder)
        free = unclaimed(sorted(os.sched_getaffinity(0)), held)
        if len(free) < count:
            raise CoresBusy(busy_message(count, len(free), held))
        chosen = tuple(free[:count])
        (folder / str(os.getpid())).write_text(json.dumps(chosen))
        return chosen


def live_claims() -> dict[int, tuple[int, ...]]:
    """Cores held on this node by other live processes, by pid."""
    folder = claims_dir()
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _claims_by_pid(folder)


def unclaimed(cores: list[int] | tuple[int, ...], held: dict[int, tuple[int, ...]]) -> list[int]:
    """`cores` that no claim in `held` covers, in order."""
    taken = {core for claimed in held.values() for core in claimed}
    return [core for core in cores if core not in taken]


def busy_message(count: int, free: int, held: dict[int, tuple[int, ...]]) -> str:
    holders = "; ".join(f"pid {pid} ({_command(pid)}) holds cores {','.join(map(str, cores))}"
                        for pid, cores in sorted(held.items()))
    return (f"needs {count} cores, only {free} are free on this machine: {holders or 'none held'}."
            " Another tuning run is using them: wait for it to finish, or stop it")


def _command(pid: int) -> str:
    try:
        words = " ".join(psutil.Process(pid).cmdline()[:4]).split()  # one line, always
        return " ".join(words)[:60] or "?"
    except psutil.Error:
        return "?"


def _claims_by_pid(folder: Path) -> dict[int, tuple[int, ...]]:
    held: dict[int, tuple[int, ...]] = {}
    for claim in folder.glob("[0-9]*"):
        pid = int(claim.name)
        if pid == os.getpid() or not _claim_is_live(pid, claim):
            claim.unlink(missing_ok=True)
            continue
        held[pid] = tuple(json.loads(claim.read_text()))
    return held


def _claim_is_live(pid: int, claim: Path) -> bool:
    # A reused pid belongs to a process started after the claim was written.
    try:
        return psutil.Process(pid).create_time() <= claim.stat().st_mtime + 1.0
    except psutil.NoSuchProcess:
        return False
