"""Send everything a tuning job prints (TVM's C++ log, XGBoost, MetaSchedule) to its file."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def output_to_file(path: Path) -> Iterator[None]:
    """Redirect this process's stdout and stderr file descriptors to `path` (appending).

    File descriptors, not just `sys.stdout`, because TVM and XGBoost write from C++.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
