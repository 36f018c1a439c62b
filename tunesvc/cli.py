"""The `tunesvc` command line: tune, run, db, gpus.

A user's mistake ends in one line starting with 'Error:' and exit status 1; TVM's and
Ray's own output goes to log files under the tunesvc home folder, not the terminal.
"""

from __future__ import annotations

import json

import logging
from pathlib import Path
from typing import Any

import click

from tunesvc.api import DEFAULT_TRIALS_PER_TASK
from tunesvc.config import DB_ENV, home_dir, resolve_db_url
from tunesvc.errors import UserError, first_line
from tunesvc.models import Shape, parse_input_shape, parse_input_value

class UserErrorGroup(click.Group):
    """Turns UserError (and database errors) into click's one-line 'Error: ...'; any other
    failure too, as one line pointing at the log, which holds its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from schedules_db import StoreError
        from workers.shares import ShareError

        try:
            return super().invoke(ctx)
        except (UserError, StoreError, ShareError) as exc:
            raise click.ClickException(str(exc)) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # a bug, or a library failing where no step caught it
            logging.getLogger("tunesvc").exception("unexpected failure")
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {first_line(exc)} (traceback in "
                f"{log_file()})") from None


def input_shapes_of(values: tuple[str, ...]) -> dict[str, Shape]:
    return dict(parse_input_shape(value) for value in values)


def input_values_of(values: tuple[str, ...]) -> dict[str, str]:
    return dict(parse_input_value(value) for value in values)


def log_file() -> Path:
    return home_dir() / "tunesvc.log"


OWN_LOGGERS = ("tunesvc", "workers", "schedules_db", "__main__")


class _OwnInfoOnly(logging.Filter):
    """tunesvc's INFO lines; other libraries' (alembic, TVM, Ray) only from WARNING up,
    unless verbose."""

    verbose = False

    def filter(self, record: logging.LogRecord) -> bool:
        return (self.verbose or record.levelno >= logging.WARNING
                or record.name.split(".")[0] in OWN_LOGGERS)


_LOG_FILTER = _OwnInfoOnly()


def _setup_logging() -> None:
    logging.basicConfig(filename=log_file(), level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_LOG_FILTER)


def set_verbose(on: bool) -> None:
    _LOG_FILTER.verbose = on


db_option = click.option("--db", "db_url", metavar="URL",
                         help=f"SQLAlchemy URL of the schedule database [env {DB_ENV}; "
                              "default: an SQLite file in the user data folder].")
_shape = click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME:DxD...",
                      help="Fix an input's shape, e.g. input:1x3x224x224 (repeatable). "
                           "Zoo models take one input named 'input'.")
_value = click.option("--input-value", "input_values", multiple=True, metavar="NAME=VALUE",
                      help="Fix a scalar input of an ONNX file to a value, e.g. sr=16000 "
                           "(repeatable): the model is compiled for it, branches on it "
                           "decided; onnxruntime is fed it.")


def shape_option(command: Any) -> Any:
    """--input-shape and --input-value."""
    return _shape(_value(command))
inputs_option = click.option(
    "--inputs", "inputs_file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE.npz",
    help="Input arrays by input name (numpy.savez) to run and check the model on "
         "[default: standard-normal floats, zeros for integer and boolean inputs].")
target_option = click.option(
    "--target", default="cpu", show_default=True,
    help="cpu (this host's CPU, as LLVM names it), gpu (the first NVIDIA GPU), a TVM target "
         "as JSON such as '{\"kind\": \"llvm\", \"mcpu\": \"skylake-avx512\"}', or a TVM "
         "tag such as nvidia/nvidia-h100.")


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
    _setup_logging()


def tune_options(command: Any) -> Any:
    """The options `tune` and `submit` share (submit passes them on to `tunesvc tune`)."""
    options = [
        click.argument("model"),
        target_option,
        click.option("--shares", default="100", show_default=True, metavar="P[,P...]",
                     help="Shares to tune at, in percent of one device: of a GPU's threads "
                          "(MPS) or of this machine's CPU cores."),
        click.option("--trials", "total_trials", type=int, metavar="N",
                     help="Candidates measured per share for the whole model, spent where "
                          "they pay: each task first gets a few, then the tasks with the "
                          "largest expected gain in model latency get more; exhausted or "
                          "negligible tasks stop early. A rerun resumes the budget."),
        click.option("--trials-per-task", type=int, metavar="N",
                     help="Without --trials: candidates measured per task and share "
                          f"[default: {DEFAULT_TRIALS_PER_TASK}]. With --trials: a cap per task. "
                          "Budgets are kept in the database: a rerun measures only what is "
                          "missing."),
        shape_option,
        db_option,
        click.option("--transfer/--no-transfer", default=False, show_default=True,
                     help="At a share a task was never tuned at, first measure the best "
                          "schedules of the nearest tuned shares (same workload and "
                          "target), and search from them."),
        click.option("--fresh", is_flag=True,
                     help="Delete this model's records at these shares first and tune from "
                          "scratch (default: resume)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@click.argument("model")
@target_option
@click.option("--share", type=int, metavar="P",
              help="Share to run at, in percent [default: GPU: CUDA_MPS_ACTIVE_THREAD_PERCENTAGE "
                   "or 100; CPU: this process's cores].")
@click.option("--runs", default=50, show_default=True, type=click.IntRange(1),
              help="Timed runs for the latency figures (spread over 10 interleaved rounds: at least 10).")
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
    hits all three alike (--json gives the quartiles).
    """
    from tunesvc.report import run_text, to_json
    from tunesvc.running import run_model

    if export_times is not None and not export_times.parent.is_dir():
        raise UserError(f"--export-times {export_times}: folder {export_times.parent} does "
                        f"not exist")
    with quiet_output():
        report = run_model(model, target, share, resolve_db_url(db_url),
                           input_shapes_of(input_shapes), runs, reference=not no_reference,
                           inputs_file=inputs_file, input_values=input_values_of(input_values))
    click.echo(to_json(report) if as_json else run_text(report))
    if export_times is not None:
        export_times.write_text(json.dumps({"model": report.model, "share": report.share,
                                            "seconds": report.comparison.samples()}) + "\n")
    if not report.agreement_ok:
        if bisect:
            click.echo(_bisected(model, input_shapes_of(input_shapes), 
                                 input_values_of(input_values), inputs_file), err=True)
        raise click.ClickException(f"output does not match the {report.reference_engine} reference")


def _bisected(model: str, input_shapes: dict[str, Shape], input_values: dict[str, str],
              inputs_file: Path | None) -> str:
    from tunesvc.bisect import describe, first_divergence
    from tunesvc.inputs import model_inputs
    from tunesvc.models import load_model

    with quiet_output():
        loaded = load_model(model, input_shapes, input_values)
        return describe(first_divergence(loaded, model_inputs(loaded, inputs_file)))


def quiet_output() -> Any:
    from workers.logs import output_to_file

    return output_to_file(log_file())


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def gpus(as_json: bool) -> None:
    """List NVIDIA GPUs (name, memory, SMs) and whether an MPS server serves each."""
    from tunesvc.gpus import scan_gpus
    from tunesvc.report import gpus_text, to_json

    scan = scan_gpus()
    click.echo(to_json(scan) if as_json else gpus_text(scan))


# The database and cluster commands register themselves on `cli` (their modules import
# this one).
from tunesvc import cli_cluster, cli_db, cli_deploy, cli_report, cli_serve, cli_tune  # noqa: E402,F401


def main() -> None:
    cli(prog_name="tunesvc")
