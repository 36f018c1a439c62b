"""Ctrl-C while a tuning runs, noted by a handler of the coordinator's own.

The KeyboardInterrupt Python raises for Ctrl-C can be dropped on the way: Python drops an
exception raised inside a finalizer, and the handler may run inside one (or inside a wait
Ray's core worker runs, which checks signals itself). A tuning was seen to run to its end
after Ctrl-C. The note this handler leaves survives that, and the coordinator's waits on
Ray poll it (`raise_if_interrupted`) between short waits.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

WAIT_POLL_SEC = 0.5  # how long one wait on Ray blocks before the note is looked at

_interrupted = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _interrupted.set()
    raise KeyboardInterrupt


@contextmanager
def noting_ctrl_c() -> Iterator[None]:
    """Within: Ctrl-C raises KeyboardInterrupt as usual and is also noted."""
    nested = signal.getsignal(signal.SIGINT) is _on_sigint  # the outer hold keeps the note
    if nested or threading.current_thread() is not threading.main_thread():
        yield
        return
    _interrupted.clear()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _interrupted.clear()  # the note is the hold's: a later wait outside it must not see it


def raise_if_interrupted() -> None:
    """KeyboardInterrupt if Ctrl-C came while `noting_ctrl_c` held, even if it was dropped."""
    if _interrupted.is_set():
        raise KeyboardInterrupt
