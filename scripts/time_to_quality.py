#!/usr/bin/env python3
"""Time to quality: the end-to-end latency a tuning run has reached after m minutes, measured
(not estimated) at the run's share beside onnxruntime, for tunesvc (cold or warm cost model)
and stock MetaSchedule (`tune_relax`, see scripts/stock_tuning.py).

Each run tunes once for its wall time; afterwards its database is cut back to what it held
at each minute asked for (tunesvc: records created by then; stock: records of the batches
measured by then), the model is compiled from that and timed against onnxruntime in
interleaved rounds. Runs are listed in OUT/runs.json, points in OUT/points.json, tables in
OUT/results.md.

    scripts/time_to_quality.py tunesvc r50a zoo:resnet18 50 --trials 1800 --out OUT
    scripts/time_to_quality.py tunesvc r50w zoo:resnet18 50 --trials 1800 --warm --out OUT
    scripts/time_to_quality.py tunesvc r50h zoo:resnet18 50 --trials 1400 --warm --workers 1 \\
        --out OUT                                          # on stock's one core at 50%
    scripts/time_to_quality.py stock s50a zoo:resnet18 50 --out OUT
    scripts/time_to_quality.py adopt m100a zoo:mobilenet_v2 100 DB_URL_OR_FILE \\
        --started "2026-12-05 05:02:15" --out OUT          # a tunesvc run made earlier
    scripts/time_to_quality.py curve --minutes 5,10,20,30 --out OUT

Run it on a quiet machine, one step at a time: nothing else should share the cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from bench_worth_tuning import _cpu_name  # same folder: run as a script

HERE = Path(__file__).resolve().parent
STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLite holds tunesvc's created_at (UTC)
STOCK_GRACE_SEC = 120.0  # past its wall time, for stock's clock to stop it itself
STOCK_BATCH = 64  # stock's own candidates per batch (num_trials_per_iter)


@dataclass(frozen=True)
class Run:
    name: str
    engine: str  # "tunesvc[-warm][-<w>w]" (w workers a share), "tune_relax[-<n>]" (n a batch)
    model: str
    share: int
    started: str  # UTC, STAMP
    where: str  # tunesvc: the SQLite file; stock: its folder
    shapes: list[str] = field(default_factory=list)  # --input-shape values

    def shape_args(self) -> list[str]:
        return [arg for shape in self.shapes for arg in ("--input-shape", shape)]


@dataclass(frozen=True)
class Point:
    run: str
    engine: str
    model: str
    share: int
    minute: float
    tuned_median_sec: float
    onnxruntime_median_sec: float
    ratio_median: float  # tuned / onnxruntime, median of interleaved per-round ratios
    ratio_low: float
    ratio_high: float
    max_abs_error: float


def _now() -> str:
    return datetime.now(timezone.utc).strftime(STAMP)


def _load(out: Path, name: str, kind: type) -> list:
    path = out / name
    return [kind(**item) for item in json.loads(path.read_text())] if path.exists() else []


def _save(out: Path, name: str, items: list) -> None:
    (out / name).write_text(json.dumps([asdict(i) for i in items], indent=1))


def _register(out: Path, run: Run) -> None:
    runs = [r for r in _load(out, "runs.json", Run) if r.name != run.name]
    _save(out, "runs.json", [*runs, run])


def _timed_out(command: list[str], seconds: float, log: Path, whole_group: bool = False) -> int:
    """Run `command`; once it has run `seconds`, interrupt it (SIGINT, as Ctrl-C) or, with
    `whole_group`, kill it and every process it started. Returns its exit code."""
    with log.open("w") as sink:
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                 start_new_session=whole_group)
        try:
            return child.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            if whole_group:
                os.killpg(child.pid, signal.SIGKILL)
            else:
                child.send_signal(signal.SIGINT)
            return child.wait()


@click.group()
def main() -> None:
    """Tune, then measure each run as it stood minute by minute."""


_out_option = click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                           required=True, help="The benchmark's folder.")
_shapes_option = click.option("--input-shape", "shapes", multiple=True, metavar="NAME:DxD...",
                              help="An input's shape, as tunesvc takes it.")


@main.command("tunesvc")
@click.argument("name")
@click.argument("model")
@click.argument("share", type=click.IntRange(1, 100))
@click.option("--trials", type=int, required=True, help="The model-level budget.")
@click.option("--minutes", default=30.0, show_default=True)
@click.option("--warm/--cold", default=False, help="tunesvc's --warm-model/--cold-model.")
@click.option("--seed-db", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Start from a copy of this SQLite database (records of other models).")
@click.option("--workers", type=click.IntRange(min=1),
              help="tunesvc's --workers-per-share; 1 holds it to the share's cores, as stock "
                   "is [default: as many as fit, e.g. two one-core workers at 50% of 2 cores].")
@_out_option
@_shapes_option
def tunesvc_command(name: str, model: str, share: int, trials: int, minutes: float,
                    warm: bool, seed_db: Path | None, workers: int | None, out: Path,
                    shapes: tuple[str, ...]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    db = out / f"{name}.sqlite"
    if db.exists():
        raise click.ClickException(f"{db} exists: a run is tuned once")
    if seed_db:
        shutil.copy(seed_db, db)
    engine = ("tunesvc-warm" if warm else "tunesvc") + (f"-{workers}w" if workers else "")
    run = Run(name, engine, model, share, _now(), str(db), list(shapes))
    held = ["--workers-per-share", str(workers)] if workers else []
    _timed_out([sys.executable, "-m", "tunesvc", "tune", model, *run.shape_args(), "--target",
                "cpu", "--shares", str(share), "--trials", str(trials), "--db", f"sqlite:///{db}",
                "--no-compare", "--warm-model" if warm else "--cold-model", *held], minutes * 60,
               out / f"{name}.log")
    _register(out, run)


@main.command("stock")
@click.argument("name")
@click.argument("model")
@click.argument("share", type=click.IntRange(1, 100))
@click.option("--minutes", default=30.0, show_default=True)
@click.option("--per-batch", default=STOCK_BATCH, show_default=True,
              help="Stock's candidates per batch; a first round is one batch per task.")
@_out_option
@_shapes_option
def stock_command(name: str, model: str, share: int, minutes: float, per_batch: int,
                  out: Path, shapes: tuple[str, ...]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    engine = "tune_relax" if per_batch == STOCK_BATCH else f"tune_relax-{per_batch}"
    run = Run(name, engine, model, share, _now(), str(out / name), list(shapes))
    _register(out, run)  # before it starts: a run stopped by hand keeps what it measured
    log = out / f"{name}.log"
    # Its clock stops it at the first batch committed past the limit; a first round still
    # running then (nothing committed) is ended from here. Committed records stay.
    code = _timed_out([sys.executable, str(HERE / "stock_tuning.py"), "tune", model,
                       *run.shape_args(), str(share), "--minutes", str(minutes), "--out",
                       run.where, "--per-batch", str(per_batch)],
                      minutes * 60 + STOCK_GRACE_SEC, log, whole_group=True)
    if code != 0:
        click.echo(f"{name}: stock ended with exit code {code} (see {log})")


@main.command("adopt")
@click.argument("name")
@click.argument("model")
@click.argument("share", type=click.IntRange(1, 100))
@click.argument("db", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--started", required=True, help="When its tuning began, UTC.")
@click.option("--warm", is_flag=True, help="It was tuned with --warm-model.")
@_out_option
@_shapes_option
def adopt_command(name: str, model: str, share: int, db: Path, started: str, warm: bool,
                  out: Path, shapes: tuple[str, ...]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(started).strftime(STAMP)
    _register(out, Run(name, "tunesvc-warm" if warm else "tunesvc", model, share, stamp,
                       str(db.resolve()), list(shapes)))


def tunesvc_at(run: Run, minute: float, work: Path) -> Point:
    """`tunesvc run` on a copy of the run's database holding what it held at `minute`."""
    db = work / f"{run.name}-{minute:g}.sqlite"
    shutil.copy(run.where, db)
    cut = (datetime.strptime(run.started, STAMP) + timedelta(minutes=minute)).strftime(STAMP)
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM tuning_records WHERE created_at > ?", (cut,))
        connection.execute(
            "DELETE FROM slice_completions WHERE NOT EXISTS (SELECT 1 FROM tuning_records r "
            "WHERE r.workload_id = slice_completions.workload_id AND r.target_id = "
            "slice_completions.target_id AND r.share_id = slice_completions.share_id)")
    done = subprocess.run([sys.executable, "-m", "tunesvc", "run", run.model, *run.shape_args(),
                           "--target", "cpu", "--share", str(run.share), "--db",
                           f"sqlite:///{db}", "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        raise click.ClickException(f"tunesvc run of {run.name} at {minute} min: {done.stderr}")
    report = json.loads(done.stdout)
    ratio = report["comparison"]["ratio_vs_reference"]
    return Point(run.name, run.engine, run.model, run.share, minute, report["median_sec"],
                 report["comparison"]["onnxruntime"]["median_sec"], ratio["median"],
                 ratio["low"], ratio["high"], report["max_abs_error"])


def stock_at(run: Run, minute: float) -> Point:
    done = subprocess.run([sys.executable, str(HERE / "stock_tuning.py"), "measure", run.model,
                           *run.shape_args(), str(run.share), run.where, "--minute",
                           str(minute)], capture_output=True, text=True)
    if done.returncode != 0:
        raise click.ClickException(f"stock measure of {run.name} at {minute} min: {done.stderr}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    return Point(run.name, run.engine, run.model, run.share, minute, got["tuned_median_sec"],
                 got["onnxruntime_median_sec"], got["ratio_median"], got["ratio_low"],
                 got["ratio_high"], got["max_abs_error"])


@main.command("curve")
@click.option("--minutes", default="5,10,15,20,30", show_default=True)
@click.option("--runs", "names", default="", help="Run names (default: every run).")
@_out_option
def curve_command(minutes: str, names: str, out: Path) -> None:
    """Measure each run at each minute not measured yet; write the tables."""
    points = _load(out, "points.json", Point)
    work = out / "cut"
    work.mkdir(exist_ok=True)
    wanted = set(filter(None, names.split(",")))
    for run in _load(out, "runs.json", Run):
        for minute in (float(m) for m in minutes.split(",")):
            if (wanted and run.name not in wanted) or any(
                    (p.run, p.minute) == (run.name, minute) for p in points):
                continue
            point = stock_at(run, minute) if run.engine.startswith("tune_relax") else \
                tunesvc_at(run, minute, work)
            points.append(point)
            _save(out, "points.json", points)
            click.echo(f"{run.name} {minute:g} min: {point.ratio_median:.2f}x onnxruntime")
    (out / "results.md").write_text(tables(points))


def tables(points: list[Point]) -> str:
    """Each run minute by minute, then the minutes each run needed to reach 1.2x, 1.1x and
    1.0x of onnxruntime (the first minute measured at or below it)."""
    head = ["| run | engine | model | share | minute | tuned | onnxruntime | ratio (quartiles) "
            "| max abs error |", "|" + "---|" * 9]
    rows = [f"| {p.run} | {p.engine} | {p.model} | {p.share}% | {p.minute:g} | "
            f"{p.tuned_median_sec * 1e3:.2f} ms | {p.onnxruntime_median_sec * 1e3:.2f} ms | "
            f"{p.ratio_median:.2f}x ({p.ratio_low:.2f}-{p.ratio_high:.2f}) | "
            f"{p.max_abs_error:.1e} |" for p in sorted(points, key=_order)]
    reach = ["| run | engine | model | share | to 1.2x | to 1.1x | to 1.0x |", "|" + "---|" * 7]
    for run in sorted({p.run for p in points}):
        own = sorted((p for p in points if p.run == run), key=_order)
        first = [next((f"{p.minute:g} min" for p in own if p.ratio_median <= goal), "not reached")
                 for goal in (1.2, 1.1, 1.0)]
        reach.append(f"| {run} | {own[0].engine} | {own[0].model} | {own[0].share}% | "
                     + " | ".join(first) + " |")
    machine = f"{os.cpu_count()} cores, {_cpu_name()}"
    return "\n".join([f"Measured on {machine}; written {_now()[:16]} UTC.", "", *head, *rows,
                      "", *reach, ""])


def _order(point: Point) -> tuple[str, str, int, str, float]:
    return point.model, point.engine, point.share, point.run, point.minute


if __name__ == "__main__":
    main()
