"""`tunesvc compile`: a model's library with the kernels tuned for one share, to deploy."""

from __future__ import annotations

from pathlib import Path

import click

from tunesvc.cli.common import db_option, quiet_output, shape_option, target_option
from tunesvc.config import resolve_db_url


@click.command("compile")
@click.argument("model")
@target_option
@click.option("--share", type=int, metavar="P", required=True,
              help="Share the library will run at, in percent: its kernels are the ones "
                   "tuned for it (else the nearest tuned share, else TVM's default).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Library to write (e.g. model.so); its manifest goes beside it "
                   "(model.so.json).")
@shape_option
@db_option
def compile_model(model: str, target: str, share: int, output: Path,
                  input_shapes: tuple[str, ...], input_values: tuple[str, ...],
                  db_url: str | None) -> None:
    """Compile MODEL with the schedules tuned for a share into a deployable library.

    Writes the library and a manifest (JSON: model fingerprint, target, share, inputs, and
    which record served each operator). A serving process loads it with
    `tunesvc.runtime.load_library(PATH)` (TVM only, no schedule database) and calls it with
    NumPy arrays, one per input in manifest order.
    """
    from tunesvc.models.spec import ModelSpec
    from tunesvc.runtime.deploy import check_output, manifest_path, write_library
    from tunesvc.runtime.tuned import load

    check_output(output)  # before the minutes of compiling
    with quiet_output():
        tuned = load(ModelSpec.of_cli(model, input_shapes, input_values), target=target,
                     share=share, db=resolve_db_url(db_url))
        manifest = write_library(tuned, output)
    click.echo(f"Wrote {output} and {manifest_path(output)}: {model} for {manifest.share}, "
               f"{manifest.tuned_operators} of {len(manifest.operators)} operators tuned "
               f"(the rest use TVM's default schedules).")
