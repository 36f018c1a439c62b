#!/usr/bin/env python3
"""Does cross-share transfer pay? Tuning at a new share from scratch against tuning it with
`--transfer` from a database that holds the model tuned at another share.

For each mode, the model is tuned at --to-share with growing model-level budgets (each
step resumes the last), and after each step `tunesvc run` measures it (beside
onnxruntime, same process, same cores). Transfer starts from a copy of --from-db; from
scratch starts from an empty database (so no share's records help it, not even at run
time). The answer is the budget each mode needs to come within 5% of the best latency
from scratch.

    scripts/bench_transfer.py --model zoo:resnet18 --from-db sqlite:///r18-100.sqlite \\
        --from-share 100 --to-share 50 --budgets 150,300,600 --out /tmp/transfer-r18-100-50

Writes results.json and results.md to --out after every point. Run it alone on the machine.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import click

from bench_worth_tuning import _cpu_name, tunesvc  # same folder: run as a script

WITHIN = 1.05  # "as good as from scratch": within 5% of its best latency


@dataclass(frozen=True)
class Point:
    mode: str  # "transfer" or "scratch"
    budget: int
    trials: int
    tuning_wall_sec: float
    tuned_median_sec: float
    onnxruntime_median_sec: float


def curve(mode: str, model: str, share: int, budgets: list[int], db: str, runs: int,
          out: Path, points: list[Point]) -> None:
    wall, trials = 0.0, 0
    flag = "--transfer" if mode == "transfer" else "--no-transfer"
    for budget in budgets:
        started = time.monotonic()
        tuned = tunesvc("tune", model, "--shares", str(share), "--trials", str(budget), flag,
                        "--no-compare", "--json", "--db", db)
        wall += time.monotonic() - started
        trials += sum(s["trials_measured"] for s in tuned["summaries"])
        report = tunesvc("run", model, "--share", str(share), "--runs", str(runs), "--json",
                         "--db", db)
        points.append(Point(mode, budget, trials, wall, report["latency"]["median_sec"],
                            report["comparison"]["onnxruntime"]["median_sec"]))
        save(points, out)
        click.echo(f"  {mode} {budget} trials: {wall:.0f} s, "
                   f"{points[-1].tuned_median_sec * 1e3:.2f} ms")


def first_within(points: list[Point], mode: str, best: float) -> Point | None:
    return next((p for p in points if p.mode == mode and p.tuned_median_sec <= WITHIN * best),
                None)


def markdown(points: list[Point]) -> str:
    rows = [f"| {p.mode} | {p.budget} | {p.trials} | {p.tuning_wall_sec:.0f} s | "
            f"{p.tuned_median_sec * 1e3:.2f} ms | {p.onnxruntime_median_sec * 1e3:.2f} ms | "
            f"{p.tuned_median_sec / p.onnxruntime_median_sec:.2f}x |" for p in points]
    scratch = [p.tuned_median_sec for p in points if p.mode == "scratch"]
    verdict = []
    if scratch:
        best = min(scratch)
        for mode in ("scratch", "transfer"):
            hit = first_within(points, mode, best)
            verdict.append(f"- {mode}: " + (f"within 5% of the best from scratch "
                                            f"({best * 1e3:.2f} ms) after {hit.trials} trials, "
                                            f"{hit.tuning_wall_sec:.0f} s" if hit else
                                            "not within 5% of the best from scratch"))
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        f"Measured {when} on {_cpu_name()} with `{' '.join(sys.argv)}`.", "",
        "| mode | budget | trials | tuning wall | tuned median | onnxruntime median | "
        "tuned / onnxruntime |", "|---|---|---|---|---|---|---|", *rows, "", *verdict, ""])


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy (SQLite's backup: includes what is still in the WAL file)."""
    target.unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def save(points: list[Point], out: Path) -> None:
    (out / "results.json").write_text(json.dumps([asdict(p) for p in points], indent=2))
    (out / "results.md").write_text(markdown(points))


@click.command()
@click.option("--model", default="zoo:resnet18", show_default=True)
@click.option("--from-db", required=True, metavar="URL",
              help="An SQLite database holding the model tuned at --from-share (copied).")
@click.option("--from-share", type=int, required=True)
@click.option("--to-share", type=int, required=True)
@click.option("--budgets", default="150,300,600", show_default=True,
              help="Model-level budgets at --to-share, growing; each step resumes the last.")
@click.option("--modes", default="transfer,scratch", show_default=True)
@click.option("--runs", default=30, show_default=True, type=int)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def main(model: str, from_db: str, from_share: int, to_share: int, budgets: str, modes: str,
         runs: int, out: Path) -> None:
    """Tune --to-share with and without transfer from --from-share; see the docstring."""
    source = Path(from_db.removeprefix("sqlite:///"))
    if not source.is_file():
        raise click.ClickException(f"--from-db {from_db}: no such SQLite file")
    out.mkdir(parents=True, exist_ok=True)
    steps, points = [int(b) for b in budgets.split(",")], []
    for mode in modes.split(","):
        db = out / f"{mode}-{to_share}.sqlite"
        if mode == "transfer":
            copy_sqlite(source, db)
        click.echo(f"{mode}: {model} at {to_share}% (from {from_share}%)")
        curve(mode, model, to_share, steps, f"sqlite:///{db}", runs, out, points)
    click.echo(f"results in {out}/results.md")


if __name__ == "__main__":
    main()
