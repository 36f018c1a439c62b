#!/usr/bin/env python3
"""Start, stop or report the MPS control daemon of one GPU (idempotent).

    scripts/mps.py start [--gpu 0]    # no-op if already running
    scripts/mps.py status [--gpu 0]   # exit 0 if running, 3 if not
    scripts/mps.py stop [--gpu 0]     # no-op if not running

The daemon gets its own pipe and log directories under $TUNESVC_MPS_DIR (default
/tmp/tunesvc-mps/gpu-N/); tunesvc's GPU workers use the same ones.
"""

from __future__ import annotations

import sys

import click

from workers.shares import mps_daemon as mps

NOT_RUNNING_EXIT = 3


def _report(state: mps.MpsStatus) -> None:
    click.echo(f"GPU {state.paths.gpu}: {'running' if state.running else 'not running'} "
               f"({state.detail})")
    click.echo(f"  CUDA_MPS_PIPE_DIRECTORY={state.paths.pipe_dir}")
    click.echo(f"  CUDA_MPS_LOG_DIRECTORY={state.paths.log_dir}")
    if state.servers:
        click.echo(f"  servers: {' '.join(state.servers)}")


@click.command()
@click.argument("action", type=click.Choice(["start", "stop", "status"]))
@click.option("--gpu", default="0", show_default=True, help="GPU index or UUID.")
def main(action: str, gpu: str) -> None:
    """ACTION the MPS control daemon of one GPU."""
    try:
        state = {"start": mps.start, "stop": mps.stop, "status": mps.status}[action](gpu)
    except mps.MpsError as exc:
        raise click.ClickException(str(exc)) from None
    _report(state)
    if action == "status" and not state.running:
        sys.exit(NOT_RUNNING_EXIT)
    if state.faulted:
        raise click.ClickException("the MPS server is in a fault state: stop and start the daemon")


if __name__ == "__main__":
    main()
