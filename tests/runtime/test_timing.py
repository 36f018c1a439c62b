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


def test_each_turn_starts_after_the_engine_before_it_has_settled() -> None:
    """An engine's idle threads spin on after its last call (onnxruntime's for tens of
    milliseconds): the next engine's turn waits `settle_sec` before its first timed call."""
    calls: list[tuple[str, float, float]] = []

    def engine(name: str):  # type: ignore[no-untyped-def]
        def call() -> None:
            started = time.perf_counter()
            time.sleep(0.001)
            calls.append((name, started, time.perf_counter()))
        return call

    time_interleaved({"a": engine("a"), "b": engine("b")}, runs=6, rounds=3, settle_sec=0.2)
    timed = calls[6:]  # after three warm-up calls each
    turns = [(before, after) for before, after in zip(timed, timed[1:]) if before[0] != after[0]]
    assert len(turns) == 5  # a a b b | a a b b | a a b b
    assert all(after[1] - before[2] >= 0.2 for before, after in turns)
    within = [(before, after) for before, after in zip(timed, timed[1:]) if before[0] == after[0]]
    assert all(after[1] - before[2] < 0.1 for before, after in within)
