#!/usr/bin/env python3
"""Is it worth tuning? Best end-to-end latency against tuning wall time, per model and
share, beside onnxruntime on the same cores. (Stock MetaSchedule, and time to quality from
one run per engine: scripts/time_to_quality.py.)

For each model and share, tunesvc tunes with a growing model-level budget (`tune
--trials B`, each step resuming the last), and after each step `tunesvc run` measures the
model, TVM's default schedules and onnxruntime on the share's cores in one process.

    scripts/bench_worth_tuning.py --models zoo:resnet18 --shares 100 \\
        --budgets 256,512,1024 --out bench-out
    scripts/bench_worth_tuning.py --models zoo:mlp --shares 50,100 --budgets 8,16 \\
        --runs 5 --out /tmp/smoke                                           # a smoke run

Writes results.json, results.md and curve.png to --out after every point. Run again into
the same --out with larger budgets to continue a curve: its databases resume and its wall
time carries on. Run it on a quiet machine: it times things one at a time, and nothing else
should share the cores.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import click


@dataclass(frozen=True)
class Point:
    """One measurement after tuning up to `budget` trials."""

    engine: str  # "tunesvc" or "tune_relax"
    model: str
    share: int
    budget: int
    trials: int
    tuning_wall_sec: float
    tuned_median_sec: float
    tuned_p90_sec: float
    onnxruntime_median_sec: float
    default_median_sec: float | None

    @property
    def versus_onnxruntime(self) -> float:
        """Tuned latency as a multiple of onnxruntime's (below 1: tuned is faster)."""
        return self.tuned_median_sec / self.onnxruntime_median_sec


def tunesvc(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "tunesvc", *args], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise click.ClickException(f"tunesvc {' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def tunesvc_curve(model: str, share: int, budgets: list[int], runs: int, out: Path,
                  points: list[Point]) -> None:
    """Tune up to each budget in turn, appending a point (and saving) after each.

    A curve already in `points` (from an earlier results.json in --out) is continued: its
    database resumes, its wall time and trials carry on, budgets it reached are skipped.
    """
    db = f"sqlite:///{out / (_slug(model) + f'-{share}.sqlite')}"
    earlier = [p for p in points if (p.engine, p.model, p.share) == ("tunesvc", model, share)]
    wall = earlier[-1].tuning_wall_sec if earlier else 0.0
    trials = earlier[-1].trials if earlier else 0
    for budget in (b for b in budgets if not earlier or b > earlier[-1].budget):
        started = time.monotonic()
        tuned = tunesvc("tune", model, "--shares", str(share), "--trials", str(budget),
                        "--no-compare", "--json", "--db", db)
        wall += time.monotonic() - started
        trials += sum(s["trials_measured"] for s in tuned["summaries"])
        report = tunesvc("run", model, "--share", str(share), "--runs", str(runs), "--json",
                         "--db", db)
        points.append(_point("tunesvc", model, share, budget, wall, report, trials))
        save(points, out)
        click.echo(f"  tunesvc {model} {share}% {budget} trials: {wall:.0f} s tuning, "
                   f"{points[-1].tuned_median_sec * 1e3:.2f} ms "
                   f"(onnxruntime {points[-1].onnxruntime_median_sec * 1e3:.2f} ms)")


def _point(engine: str, model: str, share: int, budget: int, wall: float, report: dict,
           trials: int) -> Point:
    comparison = report["comparison"]
    default = comparison.get("tvm_default")
    return Point(engine, model, share, budget, trials, wall, report["latency"]["median_sec"],
                 report["latency"]["p90_sec"], comparison["onnxruntime"]["median_sec"],
                 default["median_sec"] if default else None)


def _slug(model: str) -> str:
    return model.replace(":", "_").replace("/", "_")


def markdown(points: list[Point], command: str) -> str:
    head = ["| engine | model | share | budget | trials | tuning wall | trials/min | tuned median "
            "| p90 | onnxruntime median | tuned / onnxruntime |", "|" + "---|" * 11]
    rows = [f"| {p.engine} | {p.model} | {p.share}% | {p.budget} | {p.trials} | "
            f"{p.tuning_wall_sec:.0f} s | {60 * p.trials / p.tuning_wall_sec:.1f} | "
            f"{p.tuned_median_sec * 1e3:.2f} ms | {p.tuned_p90_sec * 1e3:.2f} ms | "
            f"{p.onnxruntime_median_sec * 1e3:.2f} ms | {p.versus_onnxruntime:.2f}x |"
            for p in points]
    machine = f"{platform.node()}, {os.cpu_count()} cores, {_cpu_name()}"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([f"Measured {when} on {machine} with `{command}`.", "", *head, *rows, ""])


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def plot(points: list[Point], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5))
    for model, share in sorted({(p.model, p.share) for p in points}):
        own = [p for p in points if (p.model, p.share) == (model, share)]
        curve = [p for p in own if p.engine == "tunesvc"]
        line, = axis.plot([p.tuning_wall_sec / 60 for p in curve],
                          [p.tuned_median_sec * 1e3 for p in curve], "o-",
                          label=f"tunesvc {model} {share}%")
        axis.axhline(own[-1].onnxruntime_median_sec * 1e3, color=line.get_color(), ls="--",
                     label=f"onnxruntime {model} {share}%")
        for stock in (p for p in own if p.engine == "tune_relax"):
            axis.plot(stock.tuning_wall_sec / 60, stock.tuned_median_sec * 1e3, "x",
                      color=line.get_color(), ms=10, label=f"tune_relax {model} {share}%")
    axis.set_xlabel("tuning wall time (min)")
    axis.set_ylabel("end-to-end latency, median (ms)")
    axis.set_yscale("log")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


@click.command()
@click.option("--models", default="zoo:resnet18,zoo:mobilenet_v2", show_default=True)
@click.option("--shares", default="50,100", show_default=True)
@click.option("--budgets", default="128,256,512,1024", show_default=True,
              help="Model-level trial budgets per share, growing; each step resumes the last.")
@click.option("--runs", default=30, show_default=True, type=int)
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-worth-tuning"))
def main(models: str, shares: str, budgets: str, runs: int,
         out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    steps = [int(b) for b in budgets.split(",")]
    points = load(out)
    for model in models.split(","):
        for share in (int(s) for s in shares.split(",")):
            tunesvc_curve(model, share, steps, runs, out, points)
    click.echo(f"results in {out}/results.md, curve in {out}/curve.png")


def load(out: Path) -> list[Point]:
    """Points of an earlier run into the same --out, so a long benchmark can go on later."""
    saved = out / "results.json"
    return [Point(**p) for p in json.loads(saved.read_text())] if saved.exists() else []


def save(points: list[Point], out: Path) -> None:
    (out / "results.json").write_text(json.dumps([asdict(p) for p in points], indent=2))
    (out / "results.md").write_text(markdown(points, " ".join(sys.argv)))
    plot(points, out / "curve.png")


if __name__ == "__main__":
    main()
