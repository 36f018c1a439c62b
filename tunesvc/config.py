"""Where tunesvc keeps things by default, and the environment variables that move them.

- database: `TUNESVC_DB` (any SQLAlchemy URL), else an SQLite file in the user data folder
  (`~/.local/share/tunesvc/schedules.sqlite` on Linux);
- logs of tuning runs and compiled libraries: `TUNESVC_HOME`, else the user cache folder
  (`~/.cache/tunesvc` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DB_ENV = "TUNESVC_DB"
HOME_ENV = "TUNESVC_HOME"


def default_db_url() -> str:
    folder = Path(platformdirs.user_data_dir("tunesvc"))
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'schedules.sqlite'}"


def resolve_db_url(option: str | None) -> str:
    return option or os.environ.get(DB_ENV) or default_db_url()


def home_dir() -> Path:
    folder = Path(os.environ.get(HOME_ENV) or platformdirs.user_cache_dir("tunesvc"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def runs_dir() -> Path:
    return home_dir() / "runs"


def compiled_dir() -> Path:
    return home_dir() / "compiled"
