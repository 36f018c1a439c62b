"""The schedule database: best schedules per workload, target and resource share.

Public names: `Store` (SQL access), `SliceDatabase` (MetaSchedule's view of one
(target, share) slice, in `schedules_db.ms_adapter`, which imports TVM), and the lookup rule
in `schedules_db.lookup`.
"""

from schedules_db.lookup import Lookup, ShareChoice, best_record, choose_share, untuned_lookup
from schedules_db.store import (
    NewRecord,
    SliceKey,
    SliceSummary,
    Store,
    StoredRecord,
    StoreError,
    StoreStats,
)

__all__ = [
    "Lookup",
    "NewRecord",
    "ShareChoice",
    "SliceKey",
    "SliceSummary",
    "Store",
    "StoreError",
    "StoreStats",
    "StoredRecord",
    "best_record",
    "choose_share",
    "untuned_lookup",
]
