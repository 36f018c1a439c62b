"""The schedule database: best schedules per workload, target and resource share.

Public names: `Store` (the primitives every read and write goes through), the values it
returns (`records`), `slice_progress` (how far a slice is tuned), the lookup rule
(`lookup`), and `SliceDatabase` (MetaSchedule's view of one (target, share) slice, in
`schedules_db.ms_adapter`, which imports TVM).
"""

from schedules_db.lookup import Lookup, ShareChoice, best_record, choose_share
from schedules_db.engine import StoreError
from schedules_db.progress import slice_progress
from schedules_db.records import (
    NewRecord,
    SliceKey,
    SliceProgress,
    SliceSummary,
    StoredRecord,
    StoreStats,
)
from schedules_db.store import Store

__all__ = [
    "Lookup",
    "NewRecord",
    "ShareChoice",
    "SliceKey",
    "SliceProgress",
    "SliceSummary",
    "Store",
    "StoreError",
    "StoreStats",
    "StoredRecord",
    "best_record",
    "choose_share",
    "slice_progress",
]
