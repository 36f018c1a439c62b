"""Shared fixtures. The expensive one, `tuned_mlp`, tunes zoo:mlp for real once per session
(real TVM, real local Ray, real SQLite) through the CLI, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SHARES = (50, 100)
TRIALS = 4


@dataclass(frozen=True)
class TunedDatabase:
    url: str
    stdout: str
    home: Path


def tunesvc(*args: str, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process, as a user would."""
    return subprocess.run([sys.executable, "-m", "tunesvc", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


@pytest.fixture(scope="session")
def tunesvc_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("tunesvc-home")
    env = {**os.environ, "TUNESVC_HOME": str(home)}
    env.pop("TUNESVC_DB", None)
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="session")
def tuned_mlp(tmp_path_factory: pytest.TempPathFactory, tunesvc_env: dict[str, str]) -> TunedDatabase:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'schedules.sqlite'}"
    shares = ",".join(str(s) for s in SHARES)
    done = tunesvc("tune", "zoo:mlp", "--target", "cpu", "--shares", shares,
                   "--trials-per-task", str(TRIALS), "--db", url, env=tunesvc_env)
    assert done.returncode == 0, done.stdout + done.stderr
    return TunedDatabase(url, done.stdout, Path(tunesvc_env["TUNESVC_HOME"]))
