"""The one place that decides which tuned share a workload's schedule comes from.

Rule, in order: the exact share; else the nearest tuned share (a tie goes to the lower
share, which never asks for more of the device than the record was measured with); else
none, and the caller falls back to TVM's default schedule. A best record that measured
slower than TVM's default schedule in the same slice is not used either ("default"):
tuning never makes an operator slower.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from schedules_db.progress import slice_progress
from schedules_db.records import SliceKey, StoredRecord
from schedules_db.store import Store

Rule = Literal["exact", "nearest", "default", "none"]


@dataclass(frozen=True)
class ShareChoice:
    requested_percent: int
    chosen_percent: int | None
    rule: Rule

    def describe(self) -> str:
        if self.rule == "exact":
            return f"tuned at {self.chosen_percent}% (exact share)"
        if self.rule == "nearest":
            return (
                f"tuned at {self.chosen_percent}% (nearest tuned share to "
                f"{self.requested_percent}%)"
            )
        if self.rule == "default":
            return (f"TVM default schedule (it measured faster than the best tuned at "
                    f"{self.chosen_percent}%)")
        return "TVM default schedule (never tuned on this target)"


@dataclass(frozen=True)
class Lookup:
    """The choice for one workload, and the record it selected (None when rule is 'none')."""

    workload_shash: str
    choice: ShareChoice
    record: StoredRecord | None
    default_run_sec: float | None = None  # TVM's default schedule, where it was measured

    @property
    def run_sec(self) -> float | None:
        """The operator's measured latency as compiled: the record's, else the default's."""
        if self.record is not None and self.record.mean_run_sec is not None:
            return self.record.mean_run_sec
        return self.default_run_sec


def choose_share(requested_percent: int, tuned_percents: Iterable[int]) -> ShareChoice:
    tuned = sorted(set(tuned_percents))
    if requested_percent in tuned:
        return ShareChoice(requested_percent, requested_percent, "exact")
    if not tuned:
        return ShareChoice(requested_percent, None, "none")
    nearest = min(tuned, key=lambda percent: (abs(percent - requested_percent), percent))
    return ShareChoice(requested_percent, nearest, "nearest")


def best_record(store: Store, key: SliceKey, shash: str) -> Lookup:
    """The fastest record for one workload at `key`'s share, under the share rule above."""
    tuned = store.tuned_shares(key.target_key, key.share_kind, shash)
    choice = choose_share(key.share_percent, tuned)
    if choice.chosen_percent is None:
        return Lookup(shash, choice, None)
    chosen = replace(key, share_percent=choice.chosen_percent)
    (record,) = store.top_records(chosen, shash, limit=1)
    default_sec = slice_progress(store, chosen, shash).default_run_sec
    if default_sec is not None and record.mean_run_sec is not None \
            and record.mean_run_sec > default_sec:
        return Lookup(shash, ShareChoice(key.share_percent, choice.chosen_percent, "default"),
                      None, default_sec)
    return Lookup(shash, choice, record, default_sec)


def nearest_shares_records(store: Store, key: SliceKey, shash: str,
                           limit: int) -> list[StoredRecord]:
    """The fastest records of one workload at the other tuned shares of `key`'s target,
    nearest share first (ties to the lower share), at most `limit`: where a search at
    `key`'s share starts when transfer is on."""
    others = [p for p in store.tuned_shares(key.target_key, key.share_kind, shash)
              if p != key.share_percent]
    found: list[StoredRecord] = []
    for percent in sorted(others, key=lambda p: (abs(p - key.share_percent), p)):
        other = replace(key, share_percent=percent)
        found += store.top_records(other, shash, limit=limit - len(found))
        if len(found) >= limit:
            break
    return found
