#!/usr/bin/env python3
"""Stock MetaSchedule (`tune_relax`) as a TVM user runs it, held to a share's cores, with a
clock on every measured batch; and the model compiled from its database as it stood at any
minute of the run, timed against onnxruntime at the share.

    scripts/stock_tuning.py tune zoo:resnet18 50 --minutes 30 --out DIR
    scripts/stock_tuning.py measure zoo:resnet18 50 DIR --minute 10   # one JSON line

`tune` gives stock the target and the fused tasks (weights prepacked) tunesvc tunes, its own
defaults otherwise (LocalBuilder, LocalRunner, XGBoost, 64 candidates a batch), with one
change it needs to measure anything here: a build timeout it can meet. Each build process of
its LocalBuilder first imports TVM's tensor intrinsics (about 30 s on these cores, once per
batch), which its 30 s default cannot hold. It stops at the first batch past the wall
limit. Each batch's wall time since the start (model import and task extraction included),
taken when its results reach the database, and its size go to DIR/clock.json; the
database's records are in commit order, so its state at minute m is its first records up to
the last batch committed before m. (Stock's task scheduler commits nothing until every task
has had one batch measured: a run stopped before then has an empty database.)

`measure` compiles the model with that state, checks it against onnxruntime and times the
two in interleaved rounds, as `tunesvc run` does. Both run in a process held to the share
(`workers.shares`: every thread on the share's cores).
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # before the imports below: they are part of stock's wall time

import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import click  # noqa: E402
import tvm  # noqa: E402
from tvm.ir.utils import derived_object  # noqa: E402
from tvm.s_tir import meta_schedule as ms  # noqa: E402

from tunesvc.evaluation.baselines import ROUNDS  # noqa: E402
from tunesvc.evaluation.reference import check_outputs, reference_call  # noqa: E402
from tunesvc.models.inputs import sample_inputs  # noqa: E402
from tunesvc.models.spec import ModelSpec  # noqa: E402
from tunesvc.pipeline.compiler import compile_with_database  # noqa: E402
from tunesvc.pipeline.importer import fuse_passes, to_relax  # noqa: E402
from tunesvc.runtime.timing import (  # noqa: E402
    LatencyStats, RoundRatios, runs_within, time_interleaved)
from tunesvc.runtime.tuned import CompileInput, TunedModel  # noqa: E402
from tunesvc.targets import ShareTarget, TargetSpec  # noqa: E402
from workers.shares import Share  # noqa: E402

BUILD_TIMEOUT_SEC = 180.0  # the tensor-intrinsic import (~30 s) plus the builds of a batch
CLOCK = "clock.json"
RECORDS = "database_tuning_record.json"
WORKLOADS = "database_workload.json"


class WallLimit(Exception):
    """Raised from the clock once the run has used its wall time."""


@derived_object
class Clock(ms.measure_callback.PyMeasureCallback):
    """After each measured batch: its wall time since the start, its size and how many
    measured without error, saved to `path`; past `limit_sec`, stops the run."""

    def __init__(self, path: Path, limit_sec: float) -> None:
        self.path = path
        self.limit_sec = limit_sec
        self.batches: list[tuple[float, int, int]] = []
        self.path.write_text("[]")  # nothing measured yet, even if the run is stopped

    def apply(self, task_scheduler: ms.task_scheduler.TaskScheduler, task_id: int,
              measure_candidates: list[ms.MeasureCandidate],
              builder_results: list[ms.builder.BuilderResult],
              runner_results: list[ms.runner.RunnerResult]) -> None:
        elapsed = time.monotonic() - STARTED
        measured = sum(1 for r in runner_results if r.error_msg is None and r.run_secs)
        self.batches.append((elapsed, len(runner_results), measured))
        self.path.write_text(json.dumps(self.batches))
        if elapsed >= self.limit_sec:
            raise WallLimit(f"stopped at {elapsed:.0f} s")


@dataclass(frozen=True)
class StockPoint:
    """The stock-tuned model as its database stood at `minute`, beside onnxruntime."""

    model: str
    share: int
    minute: float
    records: int  # candidates measured by then (failed builds and runs included)
    measured: int  # of which measured without error
    tuned_median_sec: float
    onnxruntime_median_sec: float
    ratio_median: float  # tuned / onnxruntime, median of the interleaved rounds
    ratio_low: float
    ratio_high: float
    max_abs_error: float
    runs: int


def held_target(share: int) -> ShareTarget:
    """This process held to the CPU share (before TVM's thread pool starts) and its target."""
    held = Share("cpu", share)
    held.backend.hold(held)
    return TargetSpec("cpu").at(held)


def tune(model: str, shapes: tuple[str, ...], share: int, minutes: float, out: Path,
         per_batch: int) -> None:
    at = held_target(share)
    mod = to_relax(ModelSpec.of_cli(model, shapes).load())
    with at.target, tvm.transform.PassContext(opt_level=3):
        fused = fuse_passes(at.target)(mod)  # the tasks tunesvc tunes (weights prepacked)
    clock = Clock(out / CLOCK, minutes * 60)
    builder = ms.builder.LocalBuilder(timeout_sec=BUILD_TIMEOUT_SEC)
    try:
        ms.relax_integration.tune_relax(
            fused, {}, at.target, str(out), max_trials_global=1_000_000,
            num_trials_per_iter=per_batch, builder=builder,
            measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), clock])
    except Exception:  # the clock's WallLimit, as it comes back through TVM's FFI
        if not clock.batches or clock.batches[-1][0] < minutes * 60:
            raise


def database_at(out: Path, minute: float, into: Path) -> tuple[int, int]:
    """A JSON database in `into` holding the records stock had at `minute`; returns how many
    (all, and measured without error)."""
    batches = json.loads((out / CLOCK).read_text())
    done = [b for b in batches if b[0] <= minute * 60]
    records = sum(b[1] for b in done)
    lines = (out / RECORDS).read_text().splitlines()[:records]
    shutil.copy(out / WORKLOADS, into / WORKLOADS)
    (into / RECORDS).write_text("".join(f"{line}\n" for line in lines))
    return records, sum(b[2] for b in done)


def measure(model: str, shapes: tuple[str, ...], share: int, out: Path, minute: float,
            runs: int) -> StockPoint:
    at = held_target(share)
    loaded = ModelSpec.of_cli(model, shapes).load()
    mod = to_relax(loaded)
    work = Path(tempfile.mkdtemp(prefix="stock-at-"))
    records, measured = database_at(out, minute, work)
    database = ms.database.JSONDatabase(work_dir=str(work))
    library = work / "stock.so"
    compile_with_database(mod, at.target, database).export_library(str(library))
    tuned = TunedModel(CompileInput(loaded, mod, at, [], []), library, [], False)
    inputs = sample_inputs(loaded)
    error = check_outputs(loaded, tuned(*inputs), inputs).max_abs_error
    runs = runs_within(tuned.timed_call(*inputs), runs, at_least=ROUNDS)
    runs -= runs % ROUNDS  # the same calls in every round
    threads = tuned.share.backend.host_threads(tuned.share) or 1
    times = time_interleaved({"tuned": tuned.timed_call(*inputs),
                              "onnxruntime": reference_call(loaded, inputs, threads)},
                             runs, ROUNDS)
    ratio = RoundRatios.of(times["tuned"], times["onnxruntime"])
    if ratio is None:
        raise click.ClickException("no round timed both engines")
    return StockPoint(model, share, minute, records, measured, _median(times["tuned"]),
                      _median(times["onnxruntime"]), ratio.median, ratio.low, ratio.high,
                      error, runs)


def _median(rounds: list[list[float]]) -> float:
    return LatencyStats.of([s for round_ in rounds for s in round_]).median_sec


@click.group()
def main() -> None:
    """Stock tune_relax at a CPU share, and the model it gives at any minute of its run."""


_shapes = click.option("--input-shape", "shapes", multiple=True, metavar="NAME:DxD...",
                       help="An input's shape, as tunesvc takes it.")


@main.command("tune")
@click.argument("model")
@click.argument("share", type=click.IntRange(1, 100))
@click.option("--minutes", default=30.0, show_default=True, help="Wall time to tune for.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="An empty folder for stock's database and clock.")
@click.option("--per-batch", default=64, show_default=True,
              help="Candidates per batch (num_trials_per_iter; stock's default).")
@_shapes
def tune_command(model: str, share: int, minutes: float, out: Path, per_batch: int,
                 shapes: tuple[str, ...]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise click.ClickException(f"{out} is not empty: stock resumes nothing here")
    tune(model, shapes, share, minutes, out, per_batch)


@main.command("measure")
@click.argument("model")
@click.argument("share", type=click.IntRange(1, 100))
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--minute", type=float, required=True, help="The database as it stood then.")
@click.option("--runs", default=50, show_default=True)
@_shapes
def measure_command(model: str, share: int, out: Path, minute: float, runs: int,
                    shapes: tuple[str, ...]) -> None:
    click.echo(json.dumps(asdict(measure(model, shapes, share, out, minute, runs))))


if __name__ == "__main__":
    main()
