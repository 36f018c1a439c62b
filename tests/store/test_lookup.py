"""The lookup rule: exact share, else nearest tuned share (ties to the lower), else none."""

from __future__ import annotations

from schedules_db import NewRecord, SliceKey, Store, best_record, choose_share

METASCHEDULE_FAILURE_SEC = 1e10  # what MetaSchedule records for a failed build or run


def test_exact_share_wins() -> None:
    choice = choose_share(50, [25, 50, 100])
    assert (choice.chosen_percent, choice.rule) == (50, "exact")


def test_nearest_share_and_ties_go_lower() -> None:
    assert choose_share(60, [25, 100]).chosen_percent == 25
    assert choose_share(80, [25, 100]).chosen_percent == 100
    tie = choose_share(75, [50, 100])
    assert (tie.chosen_percent, tie.rule) == (50, "nearest")


def test_no_tuned_share_means_default_schedule() -> None:
    choice = choose_share(50, [])
    assert (choice.chosen_percent, choice.rule) == (None, "none")
    assert "default" in choice.describe()


def _add(store: Store, percent: int, shash: str, seconds: float) -> int:
    key = SliceKey('{"kind": "llvm"}', "llvm", "cpu", percent)
    store.ensure_workload(shash, "{}")
    return store.add_record(key, NewRecord(shash, "{}", "[]", (seconds,), "[]", "test"))


def test_best_record_follows_the_rule_per_workload(db_url: str) -> None:
    store = Store(db_url)
    fast_25 = _add(store, 25, "w1", 1e-3)
    _add(store, 25, "w1", 2e-3)
    _add(store, 100, "w1", 5e-4)
    _add(store, 100, "w2", METASCHEDULE_FAILURE_SEC)  # a failed candidate: never selected
    lookup = lambda percent, shash: best_record(  # noqa: E731
        store, SliceKey('{"kind": "llvm"}', "llvm", "cpu", percent), shash)
    exact = lookup(25, "w1")
    assert exact.choice.rule == "exact" and exact.record is not None
    assert exact.record.id == fast_25
    nearest = lookup(50, "w1")
    assert (nearest.choice.rule, nearest.choice.chosen_percent) == ("nearest", 25)
    assert lookup(90, "w1").choice.chosen_percent == 100
    assert lookup(100, "w2").choice.rule == "none"
    assert lookup(100, "w3").record is None


def test_transfer_reads_the_nearest_shares_best_first(db_url: str) -> None:
    from schedules_db.lookup import nearest_shares_records

    store = Store(db_url)
    at_25 = [_add(store, 25, "w1", s) for s in (3e-3, 1e-3)]
    at_100 = [_add(store, 100, "w1", s) for s in (2e-3, 4e-3)]
    _add(store, 50, "w1", 5e-4)  # the share being tuned: never its own seed
    _add(store, 100, "w1", METASCHEDULE_FAILURE_SEC)  # failed: never a seed
    key = SliceKey('{"kind": "llvm"}', "llvm", "cpu", 50)
    # 25% is 25 points from 50%, 100% is 50 away: 25%'s records first, fastest first
    assert [r.id for r in nearest_shares_records(store, key, "w1", 3)] == \
        [at_25[1], at_25[0], at_100[0]]
    assert nearest_shares_records(store, key, "w2", 3) == []


def test_a_best_record_slower_than_the_default_schedule_is_not_used(db_url: str) -> None:
    """Tuning never makes an operator slower: where TVM's default schedule measured faster
    in the same slice, the lookup says so and selects no record."""
    store = Store(db_url)
    key = SliceKey('{"kind": "llvm"}', "llvm", "cpu", 50)
    _add(store, 50, "slow", 1.6e-6)
    store.mark_complete(key, "slow", 8, 6.5e-7)
    _add(store, 50, "fast", 1e-6)
    store.mark_complete(key, "fast", 8, 3e-6)
    slow = best_record(store, key, "slow")
    assert (slow.choice.rule, slow.record, slow.run_sec) == ("default", None, 6.5e-7)
    assert "faster than the best tuned" in slow.choice.describe()
    fast = best_record(store, key, "fast")
    assert fast.choice.rule == "exact" and fast.run_sec == 1e-6
