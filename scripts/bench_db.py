#!/usr/bin/env python3
"""Lookup latency of the schedule database as it grows, on SQLite and PostgreSQL.

The measured operation is what `tunesvc run` does before compiling: for every workload of
a model (20 here), find the best record under the share rule (`schedules_db.best_record`).
For each size (total records) the database holds 1,000 workloads, 3 shares and one target;
records are bulk-inserted, then the lookup of one model is timed REPEATS times.

    scripts/bench_db.py --out docs/benchmarks.md            # both backends, 1e4..1e6
    scripts/bench_db.py --sizes 10000 --backends sqlite     # a quick look

PostgreSQL runs on a throwaway local server (Debian package `postgresql`).
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import click
from sqlalchemy import insert, text

from schedules_db import SliceKey, Store, best_record
from schedules_db.schema import ShareRow, TargetRow, TuningRecordRow, WorkloadRow
from schedules_db.testing import temporary_server

WORKLOADS = 1000
MODEL_WORKLOADS = 20
SHARES = (25, 50, 100)
TARGET_KEY = '{"kind": "llvm"}'
REPEATS = 200
BATCH = 20_000


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "postgresql":
        with temporary_server() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{Path(folder) / 'bench.sqlite'}"


def populate(store: Store, records: int, seed: int = 0) -> None:
    """Bulk-insert `records` synthetic records spread over workloads and shares."""
    rng = random.Random(seed)
    with store.session() as session:
        session.add(TargetRow(id=1, key=TARGET_KEY, kind="llvm"))
        session.add_all(ShareRow(id=i + 1, kind="cpu", percent=p) for i, p in enumerate(SHARES))
        session.add_all(WorkloadRow(id=w + 1, shash=f"w{w}", mod_json="{}")
                        for w in range(WORKLOADS))
    rows = ({"workload_id": rng.randrange(WORKLOADS) + 1, "target_id": 1,
             "share_id": rng.randrange(len(SHARES)) + 1, "target_json": "{}",
             "trace_json": "[]", "run_secs_json": "[]", "args_info_json": "[]",
             "mean_run_sec": rng.uniform(1e-5, 1e-2), "worker": "bench",
             "created_at": datetime.now(timezone.utc)} for _ in range(records))
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            _insert(store, batch)
            batch = []
    if batch:
        _insert(store, batch)
    # A database filled over hours of tuning has planner statistics (PostgreSQL's autovacuum
    # analyzes it); one filled in seconds does not until ANALYZE runs.
    with store.session() as session:
        session.execute(text("ANALYZE"))


def _insert(store: Store, rows: list[dict]) -> None:
    with store.session() as session:
        session.execute(insert(TuningRecordRow), rows)


def time_lookups(store: Store, share: int) -> list[float]:
    model = [f"w{w}" for w in range(MODEL_WORKLOADS)]
    seconds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        for shash in model:
            best_record(store, SliceKey(TARGET_KEY, "llvm", "cpu", share), shash)
        seconds.append(time.perf_counter() - started)
    return seconds


def measure(backend: str, records: int) -> dict:
    with database(backend) as url:
        store = Store(url)
        started = time.perf_counter()
        populate(store, records)
        fill_sec = time.perf_counter() - started
        exact, nearest = time_lookups(store, 50), time_lookups(store, 75)
        store.close()
    return {"backend": backend, "records": records, "fill_sec": fill_sec,
            "exact": _stats(exact), "nearest": _stats(nearest)}


def _stats(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"median_ms": statistics.median(ordered) * 1e3,
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3}


def markdown(rows: list[dict], command: str) -> str:
    lines = [
        "# Schedule database lookup latency", "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores) with `{command}`; PostgreSQL on a local throwaway server "
        "(fsync off), SQLite in WAL mode; ANALYZE after the bulk fill.",
        f"One lookup = best record under the share rule for each of the {MODEL_WORKLOADS} "
        f"workloads of a model ({WORKLOADS} workloads, {len(SHARES)} shares in the database); "
        f"{REPEATS} lookups per cell.", "",
        "| backend | records | exact share: median | p99 | nearest share: median | p99 | fill |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['backend']} | {r['records']:,} | {r['exact']['median_ms']:.2f} ms | "
              f"{r['exact']['p99_ms']:.2f} ms | {r['nearest']['median_ms']:.2f} ms | "
              f"{r['nearest']['p99_ms']:.2f} ms | {r['fill_sec']:.0f} s |" for r in rows]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--sizes", default="10000,100000,1000000", show_default=True)
@click.option("--backends", default="sqlite,postgresql", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="Write the markdown table here.")
def main(sizes: str, backends: str, out: Path | None) -> None:
    """Time schedule lookups at growing database sizes; see the module docstring."""
    rows = []
    for backend in backends.split(","):
        for size in (int(s) for s in sizes.split(",")):
            click.echo(f"{backend}: {size:,} records ...")
            rows.append(measure(backend, size))
    command = "scripts/bench_db.py " + f"--sizes {sizes} --backends {backends}"
    text = markdown(rows, command)
    click.echo(text)
    click.echo(json.dumps(rows, indent=2))
    if out is not None:
        out.write_text(text)


if __name__ == "__main__":
    main()
