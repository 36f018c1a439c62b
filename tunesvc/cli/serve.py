"""`tunesvc serve` and `tunesvc plan`: models side by side, each held to its share."""

from __future__ import annotations

from pathlib import Path

import click

from tunesvc.cli.common import db_option, target_option
from tunesvc.config import home_dir, resolve_db_url


@click.command()
@click.argument("models", nargs=-1, metavar="[NAME=]MODEL@SHARE...")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Serve the models of a config file (YAML or TOML; `tunesvc plan` writes "
                   "one) instead of arguments.")
@target_option
@db_option
@click.option("--input-shape", "input_shapes", multiple=True, metavar="[MODEL/]NAME:DxD...",
              help="Fix an input's shape; with several models prefix the model's name "
                   "(resnet18/input:1x3x224x224). Repeatable.")
@click.option("--engine", type=click.Choice(["tvm", "onnxruntime"]), default=None,
              help="Serve every model with tunesvc's kernels (tvm, the default) or with "
                   "onnxruntime on the same cores (to compare).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free one; the first line says which).")
@click.option("--overlap", is_flag=True,
              help="Let the models' processes share cores when their shares add up to more "
                   "than the machine (uncontrolled); by default that is refused.")
@click.option("--queue-size", default=32, show_default=True, type=click.IntRange(1),
              help="Requests that may wait per model; beyond it the answer is 503.")
@click.option("--max-request-mb", default=64, show_default=True, type=click.IntRange(1),
              help="Largest request body; a bigger one gets 413.")
@click.option("--drain-sec", default=30.0, show_default=True, type=click.FloatRange(0),
              help="On SIGTERM, how long to let requests in flight finish.")
def serve(models: tuple[str, ...], config_file: Path | None, target: str, db_url: str | None,
          input_shapes: tuple[str, ...], engine: str | None, host: str, port: int,
          overlap: bool, queue_size: int, max_request_mb: int, drain_sec: float) -> None:
    """Serve MODELs side by side over HTTP (KServe v2 / Open Inference Protocol, as
    `tritonclient.http` speaks it), each in its own process held to its share: on a CPU
    its own cores with every thread on them, on a GPU its MPS percentage.

    Each model runs with the kernels tuned for its share (else the nearest tuned share,
    else TVM's default: the start-up line and the model's metadata say which). Examples:

    \b
        tunesvc serve zoo:resnet18@50 zoo:mobilenet_v2@50

        tunesvc serve det=models/det.onnx@100 --input-shape x:1x3x640x640

    Stop it with Ctrl-C or SIGTERM: requests in flight finish first. Per-model logs go
    to the tunesvc home folder's serve/ folder.
    """
    from tunesvc.serving.checks import check_models
    from tunesvc.serving.config_file import served_models
    from tunesvc.serving.server import ServerOptions, serve as run_server
    from tunesvc.targets import TargetSpec

    chosen, target = served_models(models, config_file, target, input_shapes, engine)
    spec = TargetSpec(target)
    spec.validate()
    check_models(chosen, spec.share_kind)
    options = ServerOptions(host, port, queue_size, max_request_mb << 20, drain_sec, overlap)
    run_server(chosen, target, spec.share_kind, resolve_db_url(db_url), home_dir() / "serve",
               options, lambda line: click.echo(line, nl=True))


@click.command()
@click.argument("models", nargs=-1, required=True, metavar="[NAME=]MODEL...")
@click.option("--objective", "objectives", multiple=True, metavar="NAME:P99_MS@RATE",
              help="A latency objective: resnet18:30@20 is p99 <= 30 ms at 20 requests/s. "
                   "Repeatable; a model without one gets the fewest cores.")
@click.option("--latency", "latencies", multiple=True, metavar="NAME@SHARE:MEDIAN_MS[:P99_MS]",
              help="A latency already known (e.g. from `tunesvc run`), instead of measuring "
                   "it. Repeatable.")
@click.option("--shares", default=None, metavar="P,P,...",
              help="Shares to consider [default: every whole-core share of this machine].")
@click.option("--measure/--no-measure", default=True, show_default=True,
              help="Measure the latencies not given, serving each model at each share.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("serve.yaml"), show_default=True,
              help="Serve config to write (read it with `tunesvc serve --config`).")
@target_option
@db_option
@click.option("--input-shape", "input_shapes", multiple=True, metavar="[MODEL/]NAME:DxD...",
              help="Fix an input's shape (prefix the model's name with several models).")
def plan(models: tuple[str, ...], objectives: tuple[str, ...], latencies: tuple[str, ...],
         shares: str | None, measure: bool, output: Path, target: str, db_url: str | None,
         input_shapes: tuple[str, ...]) -> None:
    """Choose a share and a replica count per model so that all fit on this machine and
    every latency objective holds with the most room to spare, and write the serve
    config. When no choice meets the objectives, say which fails and what it would need
    (and write nothing).

    Latencies at each share come from --latency or are measured as the model will be
    served: alone in `tunesvc serve` at that share, one request at a time with pauses
    between them (back-to-back calls meet warm caches and read faster than served ones). Queueing is modelled per model as Poisson
    arrivals and calls of constant time over its replicas: the predicted p99 is the
    call's p99 plus the queue's p99 wait at the objective's rate.

    \b
        tunesvc plan zoo:resnet18 zoo:mobilenet_v2 --objective resnet18:60@10 \\
            --objective mobilenet_v2:30@20 -o serve.yaml
    """
    from tunesvc.serving.planning import plan_and_write

    plan_and_write(models, objectives, latencies, shares, measure, output, target,
                   resolve_db_url(db_url), input_shapes, click.echo)
