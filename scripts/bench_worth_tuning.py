#!/usr/bin/env python3
"""Is it worth tuning? Best end-to-end latency against tuning wall time, per model and
share, beside onnxruntime on the same cores and beside stock MetaSchedule (`tune_relax`).

For each model and share, tunesvc tunes with a growing model-level budget (`tune
--trials B`, each step resuming the last), and after each step `tunesvc run` measures the
model, TVM's default schedules and onnxruntime on the share's cores in one process.
Then, optionally, stock `tune_relax` gets the same target and the largest budget, in a
process held to the same cores, and is measured the same way (with onnxruntime again).

    scripts/bench_worth_tuning.py --models zoo:resnet18 --shares 100 \\
        --budgets 256,512,1024 --stock --out bench-out
    scripts/bench_worth_tuning.py --models zoo:mlp --shares 50,100 --budgets 8,16 \\
        --stock --runs 5 --out /tmp/smoke                                   # a smoke run

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


def share_cores(share: int) -> list[int]:
    from workers.shares import Share
    from workers.shares.cpu import share_cores as cores_of

    return list(cores_of(Share("cpu", share)))


def stock_point(model: str, share: int, budget: int, runs: int, out: Path) -> Point:
    """Stock tune_relax in a child process held to the share's cores (taskset)."""
    cores = share_cores(share)
    env = {**os.environ, "TVM_NUM_THREADS": str(len(cores))}
    result = out / f"stock-{_slug(model)}-{share}.json"
    command = ["taskset", "-c", ",".join(map(str, cores)), sys.executable, __file__,
               "stock-child", model, str(share), str(budget), str(runs), str(result)]
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    point = Point(**json.loads(result.read_text()))
    click.echo(f"  tune_relax {model} {share}% {budget} trials: {point.tuning_wall_sec:.0f} s "
               f"tuning, {point.tuned_median_sec * 1e3:.2f} ms")
    return point


def run_stock(model: str, share: int, budget: int, runs: int, result: Path) -> None:
    """Inside the held process: tune with tune_relax, compile, time beside onnxruntime."""
    import tempfile

    from tvm.s_tir import meta_schedule as ms

    import tvm

    from tunesvc.pipeline.compiler import compile_with_database
    from tunesvc.pipeline.importer import fuse_passes, to_relax
    from tunesvc.models.sources import load_model
    from tunesvc.models.inputs import sample_inputs
    from tunesvc.evaluation.reference import reference_call
    from tunesvc.runtime.timing import time_calls
    from tunesvc.runtime.tuned import CompileInput, TunedModel
    from tunesvc.targets import TargetSpec
    from workers.shares import Share

    shares = Share("cpu", share)
    at = TargetSpec("cpu").at(shares)
    target = at.target
    loaded = load_model(model)
    mod = to_relax(loaded)
    work = tempfile.mkdtemp(prefix="stock-")
    started = time.monotonic()
    with target, tvm.transform.PassContext(opt_level=3):
        fused = fuse_passes(target)(mod)  # the same tasks (weights prepacked) as tunesvc
    database = ms.relax_integration.tune_relax(fused, {}, target, work, budget,
                                               num_trials_per_iter=16)
    wall = time.monotonic() - started
    executable = compile_with_database(mod, target, database)
    library = Path(work) / "stock.so"
    executable.export_library(str(library))
    tuned = TunedModel(CompileInput(loaded, mod, at, [], []), library, [], False)
    inputs = sample_inputs(loaded)
    latency = tuned.benchmark(*inputs, runs=runs)
    reference = time_calls(reference_call(loaded, inputs, len(os.sched_getaffinity(0))), runs)
    trials = len(database.get_all_tuning_records())
    point = Point("tune_relax", model, share, budget, trials, wall, latency.median_sec,
                  latency.p90_sec, reference.median_sec, None)
    result.write_text(json.dumps(asdict(point)))


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


@click.group(invoke_without_command=True)
@click.option("--models", default="zoo:resnet18,zoo:mobilenet_v2", show_default=True)
@click.option("--shares", default="50,100", show_default=True)
@click.option("--budgets", default="128,256,512,1024", show_default=True,
              help="Model-level trial budgets per share, growing; each step resumes the last.")
@click.option("--stock/--no-stock", default=False, help="Also run stock tune_relax with "
                                                        "the largest budget.")
@click.option("--runs", default=30, show_default=True, type=int)
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-worth-tuning"))
@click.pass_context
def main(ctx: click.Context, models: str, shares: str, budgets: str, stock: bool, runs: int,
         out: Path) -> None:
    if ctx.invoked_subcommand is not None:
        return
    out.mkdir(parents=True, exist_ok=True)
    steps = [int(b) for b in budgets.split(",")]
    points = load(out)
    for model in models.split(","):
        for share in (int(s) for s in shares.split(",")):
            tunesvc_curve(model, share, steps, runs, out, points)
            if stock:
                points.append(stock_point(model, share, steps[-1], runs, out))
                save(points, out)
    click.echo(f"results in {out}/results.md, curve in {out}/curve.png")


def load(out: Path) -> list[Point]:
    """Points of an earlier run into the same --out, so a long benchmark can go on later."""
    saved = out / "results.json"
    return [Point(**p) for p in json.loads(saved.read_text())] if saved.exists() else []


def save(points: list[Point], out: Path) -> None:
    (out / "results.json").write_text(json.dumps([asdict(p) for p in points], indent=2))
    (out / "results.md").write_text(markdown(points, " ".join(sys.argv)))
    plot(points, out / "curve.png")


@main.command("stock-child", hidden=True)
@click.argument("model")
@click.argument("share", type=int)
@click.argument("budget", type=int)
@click.argument("runs", type=int)
@click.argument("result", type=click.Path(path_type=Path))
def stock_child(model: str, share: int, budget: int, runs: int, result: Path) -> None:
    run_stock(model, share, budget, runs, result)


if __name__ == "__main__":
    main()
