"""`tunesvc report`: plots and a summary of how a model tuned and runs at each share."""

from __future__ import annotations

from pathlib import Path

import click

from tunesvc.cli.common import (db_option, quiet_output,
                                shape_option, target_option)
from tunesvc.config import resolve_db_url


@click.command()
@click.argument("model")
@target_option
@click.option("--shares", metavar="P,P,...",
              help="Shares to report, in percent [default: every share the model was tuned at].")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Folder for the PNG plots, report.md and report.json.")
@click.option("--no-measure", is_flag=True,
              help="Skip measuring end-to-end latency (plots from the database only).")
@shape_option
@db_option
def report(model: str, target: str, shares: str | None, out: Path, no_measure: bool,
           input_shapes: tuple[str, ...], input_values: tuple[str, ...],
           db_url: str | None) -> None:
    """Plot how MODEL tuned and runs at each share, into a folder.

    latency_by_share.png: end-to-end median per share for the tuned model, TVM's default
    schedules and onnxruntime (each share measured as `tunesvc run` measures it).
    tuning_curves.png: the model's latency estimated from the best kernels so far, against
    trials and minutes. operator_sources.png: the costliest operators per share and
    whether their schedule was tuned at that share, at the nearest one, or is TVM's
    default. report.md summarizes; report.json holds the data.
    """
    from tunesvc.evaluation.report_data import gather
    from tunesvc.models.spec import ModelSpec
    from tunesvc.report.text import ms
    from tunesvc.report.plots import write_report

    percents = [int(p) for p in shares.split(",")] if shares else None
    with quiet_output():
        data = gather(ModelSpec.of_cli(model, input_shapes, input_values), target, percents,
                      resolve_db_url(db_url), measure=not no_measure)
        written = write_report(data, out)
    for m in data.latency:
        ratio = (f"{m.speedup_vs_onnxruntime:.2f}x vs onnxruntime"
                 if m.speedup_vs_onnxruntime else (m.error or ""))
        click.echo(f"{m.share.label:<9} tuned {ms(m.tuned_median_sec)}  default "
                   f"{ms(m.default_median_sec)}  onnxruntime {ms(m.onnxruntime_median_sec)}  "
                   f"{ratio}")
    click.echo(f"Wrote {', '.join(p.name for p in written)} to {out}")

