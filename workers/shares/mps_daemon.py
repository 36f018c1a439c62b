"""NVIDIA MPS control daemon for one GPU, with its own pipe and log directories.

Daemon and clients must agree on CUDA_MPS_PIPE_DIRECTORY, so the directories are derived
from one root (TUNESVC_MPS_DIR, default /tmp/tunesvc-mps) and the GPU, both here and in
the environment of GPU workers (`client_env`). Starting and stopping are idempotent;
liveness is asked of the daemon itself (`get_server_list` answers only if it is up).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CONTROL_BINARY = "nvidia-cuda-mps-control"
ROOT_ENV = "TUNESVC_MPS_DIR"
DEFAULT_ROOT = "/tmp/tunesvc-mps"
PIPE_ENV = "CUDA_MPS_PIPE_DIRECTORY"
LOG_ENV = "CUDA_MPS_LOG_DIRECTORY"
STOP_WAIT_SEC = 20.0
NOT_INSTALLED = f"{CONTROL_BINARY} not installed: MPS needs the NVIDIA driver utilities"


class MpsError(RuntimeError):
    """The daemon cannot be controlled here (no driver tools, or it did not start/stop)."""


@dataclass(frozen=True)
class MpsPaths:
    gpu: str
    pipe_dir: Path
    log_dir: Path


@dataclass(frozen=True)
class MpsStatus:
    paths: MpsPaths
    installed: bool
    running: bool
    servers: tuple[str, ...]
    faulted: bool
    detail: str


def paths_for(gpu: str) -> MpsPaths:
    root = Path(os.environ.get(ROOT_ENV, DEFAULT_ROOT)) / f"gpu-{gpu}"
    return MpsPaths(gpu, root / "pipe", root / "log")


def client_env(gpu: str) -> dict[str, str]:
    """What a client process needs to reach this GPU's daemon."""
    paths = paths_for(gpu)
    return {PIPE_ENV: str(paths.pipe_dir), LOG_ENV: str(paths.log_dir)}


def _control(paths: MpsPaths, command: str | None, daemon: bool = False) -> subprocess.CompletedProcess:
    binary = shutil.which(CONTROL_BINARY)
    if binary is None:
        raise MpsError(NOT_INSTALLED)
    env = {**os.environ, **client_env(paths.gpu)}
    if daemon:
        # The daemon serves the GPUs visible when it starts; pin it to this one.
        env["CUDA_VISIBLE_DEVICES"] = paths.gpu
    args = [binary, "-d"] if daemon else [binary]
    return subprocess.run(args, input=command, env=env, capture_output=True, text=True,
                          timeout=30)


def status(gpu: str) -> MpsStatus:
    paths = paths_for(gpu)
    if shutil.which(CONTROL_BINARY) is None:
        return MpsStatus(paths, False, False, (), False, NOT_INSTALLED)
    if not (paths.pipe_dir / "control").exists():
        return MpsStatus(paths, True, False, (), False, "no daemon on this pipe directory")
    answer = _control(paths, "get_server_list\n")
    if answer.returncode != 0:
        return MpsStatus(paths, True, False, (), False, answer.stderr.strip() or "no answer")
    servers = tuple(answer.stdout.split())
    faulted = server_faulted(paths)
    detail = "daemon up" + (", SERVER FAULTED (see control.log)" if faulted else "")
    return MpsStatus(paths, True, True, servers, faulted, detail)


def server_faulted(paths: MpsPaths) -> bool:
    """Whether the daemon logged a server fault since it started (MPS writes it there)."""
    log = paths.log_dir / "control.log"
    if not log.exists():
        return False
    text = log.read_text(errors="replace")
    since_start = text.rsplit("Starting control daemon", 1)[-1]
    lowered = since_start.lower()
    return "fault" in lowered or "fatal" in lowered


def start(gpu: str) -> MpsStatus:
    current = status(gpu)
    if current.running:
        return current
    if not current.installed:
        raise MpsError(current.detail)
    current.paths.pipe_dir.mkdir(parents=True, exist_ok=True)
    current.paths.log_dir.mkdir(parents=True, exist_ok=True)
    started = _control(current.paths, None, daemon=True)
    if started.returncode != 0:
        raise MpsError(f"{CONTROL_BINARY} -d failed: {started.stderr.strip()}")
    return _wait_for(gpu, running=True)


def stop(gpu: str) -> MpsStatus:
    current = status(gpu)
    if not current.running:
        return current
    _control(current.paths, "quit\n")
    return _wait_for(gpu, running=False)


def _wait_for(gpu: str, running: bool) -> MpsStatus:
    deadline = time.monotonic() + STOP_WAIT_SEC
    while time.monotonic() < deadline:
        current = status(gpu)
        if current.running == running:
            return current
        time.sleep(0.5)
    raise MpsError(f"MPS daemon for GPU {gpu} did not {'start' if running else 'stop'} "
                   f"within {STOP_WAIT_SEC:.0f} s")
