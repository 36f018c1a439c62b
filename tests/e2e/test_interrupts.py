"""Ctrl-C is not lost when the KeyboardInterrupt it raises is swallowed on the way (as a
finalizer or a wait inside Ray's core worker does): the coordinator's wait still stops."""

from __future__ import annotations

import gc
import os
import signal
import time

import pytest
import ray

from tunesvc.tuning.dispatch import _next_ready
from tunesvc.tuning.interrupts import noting_ctrl_c, raise_if_interrupted


class _SwallowsInFinalizer:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs here; Python drops what it raises


def _interrupt_that_is_swallowed() -> None:
    _SwallowsInFinalizer()
    gc.collect()


SWALLOWED = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@SWALLOWED
def test_a_swallowed_ctrl_c_is_still_noted() -> None:
    with noting_ctrl_c():
        _interrupt_that_is_swallowed()  # no KeyboardInterrupt reaches this frame
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()
    with noting_ctrl_c():
        raise_if_interrupted()  # a new hold starts clean
        with noting_ctrl_c():
            _interrupt_that_is_swallowed()
        with pytest.raises(KeyboardInterrupt):  # noted in an inner hold: the outer one sees it
            raise_if_interrupted()


@ray.remote
def _sleeps(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@SWALLOWED
def test_waiting_on_ray_stops_soon_after_a_swallowed_ctrl_c() -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        never_in_time = _sleeps.remote(60)
        with noting_ctrl_c():
            _interrupt_that_is_swallowed()
            started = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                _next_ready([never_in_time])
        assert time.monotonic() - started < 5
        raise_if_interrupted()  # outside the hold the note is gone: later waits go on
        assert _next_ready([_sleeps.remote(0)]) is not None
    finally:
        ray.shutdown()
