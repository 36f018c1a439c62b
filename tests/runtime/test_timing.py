"""The interleaved clock: engines timed in turns, ratios per round, slow baselines bounded."""

from __future__ import annotations

import time

from tunesvc.runtime.timing import RoundRatios, runs_within, time_interleaved


def test_engines_take_turns_and_a_budgeted_one_stops_in_time() -> None:
    order: list[str] = []

    def engine(name: str, seconds: float):  # type: ignore[no-untyped-def]
        def call() -> None:
            order.append(name)
            time.sleep(seconds)
        return call

    times = time_interleaved({"a": engine("a", 0.001), "b": engine("b", 0.002),
                              "slow": engine("slow", 0.03)}, runs=12, rounds=6,
                             budget_sec={"slow": 0.07})
    assert [len(r) for r in times["a"]] == [2] * 6 and len(times["b"]) == 6
    assert len(times["slow"]) == 3 and all(len(r) == 1 for r in times["slow"])
    # after the warm-up calls, each round runs a, a, b, b (then slow while its budget lasts)
    timed = order[3 + 3 + 1:]
    assert timed[:5] == ["a", "a", "b", "b", "slow"]


def test_round_ratios_are_medians_of_per_round_ratios() -> None:
    a = [[2.0, 2.0], [4.0, 4.0], [3.0, 3.0], [100.0, 100.0]]
    b = [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [50.0, 50.0]]  # a slow round hits both
    ratio = RoundRatios.of(a, b)
    assert ratio is not None and ratio.rounds == 4
    assert ratio.median == 2.0 and ratio.low <= ratio.median <= ratio.high
    assert RoundRatios.of(a[:2], []) is None


def test_slow_calls_are_timed_fewer_times_within_the_budget() -> None:
    def slow() -> None:
        time.sleep(0.05)

    assert 3 <= runs_within(slow, runs=50, at_least=3, budget_sec=0.5) <= 10
    assert runs_within(slow, runs=50, at_least=3, budget_sec=0.01) == 3
    assert runs_within(lambda: None, runs=50, at_least=3, budget_sec=0.5) == 50
