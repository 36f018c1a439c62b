"""Core claims: disjoint across live processes, lapsing when a process dies."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from workers.shares.core_claims import CLAIMS_ENV, claim_cores, claims_dir


@pytest.fixture(autouse=True)
def private_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLAIMS_ENV, str(tmp_path / "claims"))


def _claim_and_report(count: int, queue: multiprocessing.Queue, hold: multiprocessing.Event) -> None:
    queue.put(claim_cores(count))
    hold.wait(60)


def test_live_claims_are_disjoint_and_dead_ones_lapse() -> None:
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip("needs two cores")
    context = multiprocessing.get_context("spawn")
    queue, hold = context.Queue(), context.Event()
    holder = context.Process(target=_claim_and_report, args=(1, queue, hold))
    holder.start()
    held = queue.get(timeout=60)
    mine = claim_cores(cores - 1)
    assert not set(held) & set(mine)
    with pytest.raises(RuntimeError, match="free on this machine"):
        claim_cores(cores, wait_sec=0)  # the other process still holds its core
    holder.kill()
    holder.join()
    assert len(claim_cores(cores, wait_sec=0)) == cores  # its claim lapsed with it
    assert {p.name for p in claims_dir().glob("[0-9]*")} == {str(os.getpid())}
