"""`tunesvc tune`: tune a model's operators at each share, with progress as it goes."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from tunesvc.cli.common import (
    log_file,
    set_verbose,
    inputs_option,
    tune_options,
)
from tunesvc.models.spec import ModelSpec
from workers.jobs import TuneResult

if TYPE_CHECKING:  # TVM and Ray load when a tuning starts, not for --help
    from tunesvc.evaluation.at_shares import MeasuredShare
    from tunesvc.report.progress import TuneProgress
    from tunesvc.tuning.execute import TuneOutcome
    from tunesvc.tuning.planning import TunePlan
    from tunesvc.tuning.request import TuneRequest


@click.command()
@tune_options
@click.option("--address", metavar="ADDR", help="Ray cluster to join [env RAY_ADDRESS; "
                                               "default: start a local Ray].")
@click.option("--log-dir", type=click.Path(path_type=Path),
              help="Folder for per-job logs [default: runs/<time> in the tunesvc home].")
@click.option("--compare/--no-compare", default=True, show_default=True,
              help="Once tuning ends, run the model at each share (as `tunesvc run`) and "
                   "time it against TVM's default schedules and onnxruntime on the same cores.")
@inputs_option
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object at the end (progress goes to stderr).")
@click.option("-q", "--quiet", is_flag=True, help="No progress; only the tables at the end.")
@click.option("-v", "--verbose", is_flag=True,
              help="A line per finished job even on a terminal (beside the progress bars), "
                   "and other libraries' INFO logs in tunesvc.log.")
def tune(model: str, target: str, shares: str, total_trials: int | None,
         trials_per_task: int | None, input_shapes: tuple[str, ...],
         input_values: tuple[str, ...], db_url: str | None,
         transfer: bool, warm: bool, workers_per_share: int | None, fresh: bool,
         address: str | None, log_dir: Path | None, compare: bool,
         inputs_file: Path | None, as_json: bool, quiet: bool, verbose: bool) -> None:
    """Tune MODEL's operators at each share and store the best schedules.

    MODEL is an ONNX file, a built-in zoo model (zoo:mlp, zoo:convnet, zoo:resnet18,
    zoo:mobilenet_v2) or a PyTorch module, torch:package.module:factory (the torch extra;
    factory() returns the module, or the module and a tuple of example inputs). On CPU each
    3x3 stride-1 convolution is also tuned as two Winograd variants, and the model runs
    whichever measured fastest. One job per (operator task, share) runs on share-pinned Ray
    workers; each candidate is committed to the database as it is measured. On a terminal a
    bar per share shows trials measured, ETA and the model latency estimated from the best
    kernels so far; elsewhere one line per finished job. The table at the end estimates
    end-to-end latency per share (operator latencies x uses) with tuned kernels and with
    TVM's default schedules, and gives trials per minute; with --compare (the default) a
    second table gives the model's measured latency per share beside onnxruntime's.
    """
    from tunesvc.tuning import execute as tuning
    from tunesvc.tuning.request import TuneRequest

    set_verbose(verbose)
    request = TuneRequest.of(
        ModelSpec.of_cli(model, input_shapes, input_values, inputs_file), target, shares,
        total_trials=total_trials, trials_per_task=trials_per_task, db=db_url,
        transfer=transfer, warm=warm, workers_per_share=workers_per_share, ray_address=address,
        log_dir=log_dir, fresh=fresh)
    plan = _prepared(request)
    view = _progress_view(plan, sys.stderr if as_json else sys.stdout, quiet, verbose)
    with tuning.interruptible():
        with view:
            outcome = tuning.execute(plan, _on_result(plan, view), say=view.say)
        measured = []
        if compare:
            view.say("Measuring the model at each share (tuned, TVM default, onnxruntime)...")
            measured = tuning.measure(plan)
    _print_outcome(outcome, measured, plan, as_json)
    _fail_on_failed_jobs(outcome, plan)


def _prepared(request: TuneRequest) -> TunePlan:
    """The request checked and planned (TVM's and Ray's own output to the log file)."""
    from tunesvc.tuning.execute import interruptible
    from tunesvc.tuning.planning import prepare
    from workers.logs import output_to_file

    with interruptible(), output_to_file(log_file()):
        return prepare(request)


def _progress_view(plan: TunePlan, stream: TextIO, quiet: bool, verbose: bool) -> TuneProgress:
    """The bars (or lines) `tune` shows, opened with what the plan will do."""
    from tunesvc.report.progress import TuneProgress
    from tunesvc.report.text import plan_lines

    view = TuneProgress(plan.planned_trials, {t.name: t.weight for t in plan.tasks}, stream,
                        quiet=quiet, every_job=verbose)
    for line in plan_lines(plan):
        view.say(line)
    if not plan.has_work:
        view.say("Nothing to tune (use --fresh to start over, or a larger budget).")
    return view


def _on_result(plan: TunePlan, view: TuneProgress) -> Callable[[TuneResult], None]:
    """What each finished job updates: its share's trial count and the progress view."""
    from tunesvc.report.text import progress_line

    done = 0
    trials = {share: 0 for share in plan.request.shares}

    def on_result(result: TuneResult) -> None:
        nonlocal done
        done += 1
        trials[result.share] += result.trials_measured
        view.update(result, lambda: progress_line(done, plan.jobs_planned, result,
                                                  trials[result.share],
                                                  plan.trials_left.get(result.share)))

    return on_result


def _print_outcome(outcome: TuneOutcome, measured: list[MeasuredShare], plan: TunePlan,
                   as_json: bool) -> None:
    from tunesvc.report.text import measured_table, share_table, to_json

    if as_json:
        click.echo(to_json({"summaries": outcome.summaries, "measured": measured,
                            "reused": plan.reused, "results": outcome.results}))
        return
    click.echo("")
    click.echo(share_table(outcome.summaries))
    if measured:
        click.echo("")
        click.echo(measured_table(measured))


def _fail_on_failed_jobs(outcome: TuneOutcome, plan: TunePlan) -> None:
    failed = [r for r in outcome.results if not r.ok]
    if failed:
        causes = Counter(r.error for r in failed).most_common(2)
        detail = "; ".join(f"{cause} ({count} jobs)" for cause, count in causes)
        raise click.ClickException(f"{len(failed)} of {len(outcome.results)} jobs failed: "
                                   f"{detail} (job logs: {plan.log_root})")
