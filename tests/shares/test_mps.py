"""MPS: per-GPU directories, client environment and fault detection (everywhere), and
daemon control where no NVIDIA driver is installed: clear answers, nothing started.

Starting and stopping a real daemon needs the driver utilities; that runs on GPU machines.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workers.shares import mps_daemon as mps
from workers.shares import Share

without_driver = pytest.mark.skipif(shutil.which(mps.CONTROL_BINARY) is not None,
                                    reason="driver utilities installed: covered on GPU machines")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mps.py"


@pytest.fixture(autouse=True)
def mps_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(mps.ROOT_ENV, str(tmp_path))
    return tmp_path


def test_each_gpu_has_its_own_pipe_and_log_directories(mps_root: Path) -> None:
    zero, one = mps.paths_for("0"), mps.paths_for("1")
    assert zero.pipe_dir != one.pipe_dir and zero.log_dir != one.log_dir
    assert zero.pipe_dir.is_relative_to(mps_root)


def test_gpu_workers_use_the_daemons_pipe_directory() -> None:
    env = Share("gpu", 25).backend.worker_env(Share("gpu", 25))
    assert env[mps.PIPE_ENV] == str(mps.paths_for("0").pipe_dir)


@without_driver
def test_status_without_driver_tools() -> None:
    state = mps.status("0")
    assert not state.installed and not state.running and "not installed" in state.detail


@without_driver
def test_start_without_driver_tools_is_a_clear_error(mps_root: Path) -> None:
    with pytest.raises(mps.MpsError, match="driver utilities"):
        mps.start("0")
    assert not any(mps_root.iterdir())  # nothing created
    assert not mps.stop("0").running  # stopping what is not running is a no-op


def test_fault_is_read_from_the_control_log_since_the_last_start(mps_root: Path) -> None:
    paths = mps.paths_for("0")
    paths.log_dir.mkdir(parents=True)
    log = paths.log_dir / "control.log"
    log.write_text("Starting control daemon\nServer 12 has encountered a fatal exception\n")
    assert mps.server_faulted(paths)
    log.write_text(log.read_text() + "Starting control daemon\nNew client connected\n")
    assert not mps.server_faulted(paths)


@without_driver
def test_script_reports_and_exits_with_status() -> None:
    status = subprocess.run([sys.executable, str(SCRIPT), "status"], capture_output=True,
                            text=True)
    assert status.returncode == 3 and "not running" in status.stdout
    start = subprocess.run([sys.executable, str(SCRIPT), "start"], capture_output=True, text=True)
    assert start.returncode == 1 and start.stderr.startswith("Error: ")
