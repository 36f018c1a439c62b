"""What every `tunesvc` command shares: the group class that turns a user's mistake into
one line, logging to a file, and the options several commands take. Click only: no
command lives here, and nothing here imports a command module."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from tunesvc.tuning.request import DEFAULT_TRIALS_PER_TASK, WARM_MODEL
from tunesvc.config import DB_ENV, home_dir
from tunesvc.errors import UserError, first_line


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


def setup_logging() -> None:
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

_warm_option = click.option(
    "--warm-model/--cold-model", "warm", default=WARM_MODEL, show_default=True,
    help="Learn from every record the database holds: each task's cost model first trains on "
         "other workloads' records on this target (the most similar first, a sample of at "
         "most 256 read in a few seconds), and a workload never tuned here first measures the "
         "best schedules of stored workloads of the same operators, refitted. On a model new "
         "to the database it reached the cold search's 30-minute latency in half the time "
         "(docs/benchmarks.md); --cold-model starts every cost model from nothing.")
_workers_option = click.option(
    "--workers-per-share", type=click.IntRange(min=1), metavar="N",
    help="At most N workers tune each share at once [default: as many as fit on one device: "
         "at 50% of a 2-core machine, two one-core workers, one per half]. 1 tunes on one "
         "share's worth of the machine and leaves the rest free (to serve, or to compare "
         "fairly with a tuner held to those cores).")


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
        _warm_option,
        _workers_option,
        click.option("--fresh", is_flag=True,
                     help="Delete this model's records at these shares first and tune from "
                          "scratch (default: resume)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def quiet_output() -> Any:
    from workers.logs import output_to_file

    return output_to_file(log_file())
