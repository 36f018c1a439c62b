"""The `tunesvc` command line: tune, run, db, gpus.

A user's mistake ends in one line starting with 'Error:' and exit status 1; TVM's and
Ray's own output goes to log files under the tunesvc home folder, not the terminal.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from tunesvc.cli.cluster import jobs, node_resources, submit
from tunesvc.cli.common import (UserErrorGroup, inputs_option,
                                quiet_output, setup_logging, shape_option, target_option,
                                db_option)
from tunesvc.cli.db import db
from tunesvc.cli.deploy import compile_model
from tunesvc.cli.report import report
from tunesvc.cli.serve import plan, serve
from tunesvc.cli.tune import tune
from tunesvc.config import resolve_db_url
from tunesvc.errors import UserError
from tunesvc.models.spec import ModelSpec


@click.group(cls=UserErrorGroup)
@click.version_option(package_name="tunesvc")
def cli() -> None:
    """Tune DNN operators at the GPU/CPU share they will run at, keep the best schedules
    per share, and run models with them.

    \b
    Typical session:
      tunesvc tune zoo:resnet18 --target cpu --shares 50,100 --trials-per-task 16
      tunesvc run zoo:resnet18 --target cpu --share 50
      tunesvc db records
    """
    setup_logging()


@cli.command()
@click.argument("model")
@target_option
@click.option("--share", type=int, metavar="P",
              help="Share to run at, in percent [default: GPU: CUDA_MPS_ACTIVE_THREAD_PERCENTAGE "
                   "or 100; CPU: this process's cores].")
@click.option("--runs", default=50, show_default=True, type=click.IntRange(1),
              help="Timed runs for the latency figures (spread over 10 interleaved rounds: at least "
                   "10), fewer when they would take over 60 s (a slow untuned model); "
                   "the output says so.")
@shape_option
@inputs_option
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--no-reference", is_flag=True,
              help="Skip timing TVM's default schedules and onnxruntime for comparison.")
@click.option("--export-times", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Write every timed call (seconds, per engine) to FILE as JSON.")
@click.option("--bisect", is_flag=True,
              help="If the output does not match, name the first node whose output TVM "
                   "computes differently from onnxruntime (compiles the graph once more, "
                   "with every intermediate value an output).")
def run(model: str, target: str, share: int | None, runs: int, input_shapes: tuple[str, ...],
        input_values: tuple[str, ...], inputs_file: Path | None, db_url: str | None, as_json: bool, no_reference: bool,
        export_times: Path | None, bisect: bool) -> None:
    """Compile MODEL with the schedules tuned for a share, run it there, check it, and
    compare it with what you would run untuned.

    Per operator the schedule comes from the exact share if it was tuned, else the nearest
    tuned share, else TVM's default schedule; the output says which. The output is checked
    against onnxruntime on the same inputs. Latency (median, p90, p99, mean of --runs
    calls) is measured in this process on the share's cores, interleaved in 10 rounds with
    TVM's default schedules (one call a round, 5 s at most) and with onnxruntime (one
    intra-op thread per core of the share): the ratios are speedups of the tuned model
    over each, from the median of the per-round ratios, so a slow minute of the machine
    hits all three alike (--json gives the quartiles). Each turn starts after a 0.1 s
    pause, so one engine's idle threads, still spinning, do not slow the next one's calls.
    """
    from tunesvc.report.text import run_text, to_json
    from tunesvc.evaluation.run import run_model

    if export_times is not None and not export_times.parent.is_dir():
        raise UserError(f"--export-times {export_times}: folder {export_times.parent} does "
                        f"not exist")
    spec = ModelSpec.of_cli(model, input_shapes, input_values, inputs_file)
    with quiet_output():
        report = run_model(spec, target, share, resolve_db_url(db_url), runs,
                           reference=not no_reference)
    click.echo(to_json(report) if as_json else run_text(report))
    if export_times is not None:
        export_times.write_text(json.dumps({"model": report.model, "share": report.share,
                                            "seconds": report.comparison.samples()}) + "\n")
    if not report.agreement_ok:
        if bisect:
            click.echo(_bisected(spec), err=True)
        raise click.ClickException(f"output does not match the {report.reference_engine} reference")


def _bisected(spec: ModelSpec) -> str:
    from tunesvc.evaluation.bisect import describe, first_divergence

    with quiet_output():
        loaded = spec.load()
        return describe(first_divergence(loaded, spec.inputs(loaded)))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def gpus(as_json: bool) -> None:
    """List NVIDIA GPUs (name, memory, SMs) and whether an MPS server serves each."""
    from tunesvc.gpus import scan_gpus
    from tunesvc.report.text import gpus_text, to_json

    scan = scan_gpus()
    click.echo(to_json(scan) if as_json else gpus_text(scan))


for command in (tune, submit, node_resources, jobs, db, compile_model, report, serve, plan):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="tunesvc")
