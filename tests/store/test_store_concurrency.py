"""Many processes committing at once lose nothing and duplicate nothing (SQLite in WAL
mode with a busy timeout; PostgreSQL with ordinary transactions)."""

from __future__ import annotations

import multiprocessing
from collections import Counter

import pytest

from schedules_db import NewRecord, SliceKey, Store

pytestmark = pytest.mark.slow
PROCESSES = 8
RECORDS_EACH = 1000
KEY = SliceKey('{"kind": "llvm"}', "llvm", "cpu", 50)
SHASH = "concurrency-workload"


def _commit_many(url: str, process_index: int) -> None:
    store = Store(url)
    store.ensure_workload(SHASH, "{}")
    for index in range(RECORDS_EACH):
        trace = f'["p{process_index}-{index}"]'
        store.add_record(KEY, NewRecord(SHASH, "{}", trace, (1e-3 + index * 1e-9,), "[]",
                                        f"process-{process_index}"))
    store.close()


def test_concurrent_commits_are_all_kept_once(db_url: str) -> None:
    Store(db_url).close()  # schema first, as a coordinator would
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_commit_many, args=(db_url, i)) for i in range(PROCESSES)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=600)
        assert process.exitcode == 0
    records = Store(db_url).all_records(KEY, SHASH)
    assert len(records) == PROCESSES * RECORDS_EACH
    assert max(Counter(r.trace_json for r in records).values()) == 1
    assert Counter(r.worker for r in records) == {f"process-{i}": RECORDS_EACH
                                                  for i in range(PROCESSES)}
