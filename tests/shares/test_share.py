"""Shares: validation, parsing, core counts, and the proof a worker demands before it records."""

from __future__ import annotations

import pytest

from workers.shares import MPS_PERCENT_ENV, Share, ShareError, ShareProbe, parse_shares
from workers.shares.cpu import CpuBackend, check_cpu_share
from workers.shares.gpu import check_gpu_share


@pytest.mark.parametrize("percent", [0, 101, 150, -5])
def test_out_of_range_shares_are_refused(percent: int) -> None:
    with pytest.raises(ShareError, match="out of range"):
        Share("cpu", percent)


def test_parse_shares_sorts_and_deduplicates() -> None:
    assert parse_shares("100, 25,50%,25", "gpu") == [Share("gpu", 25), Share("gpu", 50),
                                                      Share("gpu", 100)]
    with pytest.raises(ShareError, match="not a whole percentage"):
        parse_shares("50,half", "cpu")
    with pytest.raises(ShareError, match="no shares"):
        parse_shares(" , ", "cpu")


def test_cpu_core_counts_round_and_refuse_less_than_a_core() -> None:
    assert CpuBackend(machine=2).cores(Share("cpu", 50)) == 1
    assert CpuBackend(machine=16).cores(Share("cpu", 100)) == 16
    assert CpuBackend(machine=16).cores(Share("cpu", 25)) == 4
    assert CpuBackend(machine=2).cores(Share("cpu", 25)) == 1  # half a core rounds up
    with pytest.raises(ShareError, match="less than one core"):
        CpuBackend(machine=2).cores(Share("cpu", 10))


def test_cpu_share_says_what_it_became() -> None:
    assert CpuBackend(machine=2).describe(Share("cpu", 33)) == "cpu:33% = 1 of 2 cores (50%)"
    assert CpuBackend(machine=2).describe(Share("cpu", 50)) == "cpu:50% = 1 of 2 cores"


def test_unknown_share_kind_is_refused() -> None:
    with pytest.raises(ShareError, match="unknown share kind"):
        Share("tpu", 50)


def test_gpu_worker_environment_carries_the_mps_limit() -> None:
    env = Share("gpu", 25).backend.worker_env(Share("gpu", 25))
    assert env[MPS_PERCENT_ENV] == "25"
    assert MPS_PERCENT_ENV not in Share("cpu", 50).backend.worker_env(Share("cpu", 50))


def _probe(multiprocessors: int | None, mps: str | None = "25",
           affinity: tuple[int, ...] = (0,), threads: str | None = "1") -> ShareProbe:
    return ShareProbe(affinity, threads, mps, multiprocessors)


def test_cpu_share_proof() -> None:
    assert check_cpu_share(_probe(None), (0,)) is None
    assert "expected [1]" in str(check_cpu_share(_probe(None), (1,)))
    assert "TVM_NUM_THREADS" in str(check_cpu_share(_probe(None, threads="2"), (0,)))


def test_gpu_share_without_mps_is_refused() -> None:
    # No MPS daemon: the process sees the whole GPU although it asked for 25%.
    problem = check_gpu_share(Share("gpu", 25), _probe(132), full_sms=132)
    assert problem is not None and "no MPS control daemon" in problem


def test_gpu_share_proven_by_reduced_multiprocessor_count() -> None:
    assert check_gpu_share(Share("gpu", 25), _probe(34), full_sms=132) is None
    assert check_gpu_share(Share("gpu", 100), _probe(132, mps=None), full_sms=132) is None
    wrong = check_gpu_share(Share("gpu", 25), _probe(66), full_sms=132)
    assert wrong is not None and "expected about 33" in wrong
    assert "expected 25" in str(check_gpu_share(Share("gpu", 25), _probe(34, mps=None), 132))
