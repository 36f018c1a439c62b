"""The cluster commands of `tunesvc`: submit a tuning run as a Ray job, and follow it.

They join the `tunesvc` group defined in `tunesvc.cli`; no work happens here beyond
talking to Ray's job API (`tunesvc.cluster.jobs`).
"""

from __future__ import annotations

import click

from tunesvc.cli.common import tune_options


@click.command()
@tune_options
@click.option("--address", metavar="URL", help="Ray dashboard of the cluster, "
                                              "http://HEAD:8265 [env RAY_ADDRESS].")
def submit(model: str, target: str, shares: str, total_trials: int | None,
           trials_per_task: int | None,
           input_shapes: tuple[str, ...], input_values: tuple[str, ...], db_url: str | None,
           transfer: bool, warm: bool, workers_per_share: int | None, fresh: bool,
           address: str | None) -> None:
    """Submit `tunesvc tune MODEL ...` to a Ray cluster as a Ray job; prints the job id.

    The job runs on the cluster's head node and spreads its workers over the cluster. Give
    every node the same database: a PostgreSQL URL with --db (an SQLite file only works if
    all nodes see the same file). Follow it with `tunesvc jobs status|logs|stop ID`.
    """
    from tunesvc.cluster import jobs as cluster

    from tunesvc.models.spec import ModelSpec

    named = ModelSpec.of_cli(model, input_shapes, input_values)  # bad shapes fail here
    options = forwarded_options(target, shares, total_trials, trials_per_task, db_url,
                                fresh=fresh, transfer=transfer, warm=warm,
                                workers_per_share=workers_per_share)
    job_id = cluster.submit(address, cluster.tune_entrypoint(named, options))
    click.echo(job_id)
    click.echo(f"Follow it with: tunesvc jobs status {job_id} / tunesvc jobs logs {job_id}",
               err=True)


def forwarded_options(target: str, shares: str, total_trials: int | None,
                      trials_per_task: int | None, db_url: str | None, *, fresh: bool,
                      transfer: bool, warm: bool,
                      workers_per_share: int | None = None) -> list[str]:
    """The options of the `tunesvc tune` the cluster job runs: every choice spelled out,
    so the job does what was asked even where its default differs."""
    options = ["--target", target, "--shares", shares]
    options += ["--trials", str(total_trials)] if total_trials is not None else []
    options += ["--trials-per-task", str(trials_per_task)] if trials_per_task is not None else []
    options += ["--db", db_url] if db_url else []
    options += ["--fresh"] if fresh else []
    options += ["--transfer" if transfer else "--no-transfer"]
    options += ["--warm-model" if warm else "--cold-model"]
    options += ["--workers-per-share", str(workers_per_share)] if workers_per_share else []
    return options


@click.command("node-resources")
def node_resources() -> None:
    """Print the `ray start` flag that tells a cluster this machine's CPU.

    Start each node of a cluster with it (`ray start --address HEAD:6379 <flag>`). Once any
    node declares its CPU, tuning runs place their workers only on nodes of the target's
    CPU, so a cluster of mixed machines never tunes for one CPU on another.
    """
    from tunesvc.cluster.placement import this_node_flag

    flag = this_node_flag()
    if flag is None:
        raise click.ClickException("LLVM does not name this machine's CPU; its nodes need "
                                   "no resource (generic code runs anywhere)")
    click.echo(flag)


@click.group()
def jobs() -> None:
    """Follow tuning runs submitted to a Ray cluster (by job id)."""


address_option = click.option("--address", metavar="URL",
                              help="Ray dashboard, http://HEAD:8265 [env RAY_ADDRESS].")


@jobs.command("status")
@click.argument("job_id")
@address_option
def jobs_status(job_id: str, address: str | None) -> None:
    """Print PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    from tunesvc.cluster import jobs as cluster

    click.echo(cluster.status(address, job_id).value)


@jobs.command("logs")
@click.argument("job_id")
@address_option
def jobs_logs(job_id: str, address: str | None) -> None:
    """Print what the job has printed so far (progress lines and the final table)."""
    from tunesvc.cluster import jobs as cluster

    click.echo(cluster.logs(address, job_id), nl=False)


@jobs.command("stop")
@click.argument("job_id")
@address_option
def jobs_stop(job_id: str, address: str | None) -> None:
    """Stop the job; records committed so far stay, and a rerun resumes from them."""
    from tunesvc.cluster import jobs as cluster

    stopped = cluster.stop(address, job_id)
    click.echo(f"{job_id}: {'stopping' if stopped else 'already finished'}")
