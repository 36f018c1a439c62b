"""Files that appear whole or not at all: a crash never leaves half a library or manifest."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_whole(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write` on a staging path next to `path`, then rename it into place."""
    with tempfile.TemporaryDirectory(dir=path.parent) as staging:
        staged = Path(staging) / path.name
        write(staged)
        os.replace(staged, path)
