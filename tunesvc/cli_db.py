"""`tunesvc db ...`: what the schedule database holds, and upgrading its schema."""

from __future__ import annotations

from dataclasses import asdict

import click

from tunesvc.cli import cli, db_option
from tunesvc.config import resolve_db_url


@cli.group()
def db() -> None:
    """Inspect the schedule database."""


@db.command("records")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def db_records(db_url: str | None, as_json: bool) -> None:
    """Per workload, target and share: best latency, number of records, when tuned."""
    from schedules_db import Store, inventory
    from tunesvc.report import records_table, to_json

    store = Store(resolve_db_url(db_url))
    rows = inventory.summaries(store)
    if as_json:
        click.echo(to_json(rows))
    elif not rows:
        click.echo(f"No tuning records in {store.url}.")
    else:
        click.echo(records_table(rows))


@db.command("upgrade")
@db_option
def db_upgrade(db_url: str | None) -> None:
    """Apply the schema migrations this tunesvc ships (keeps every record)."""
    from schedules_db import migrate
    from schedules_db.engine import create_store_engine, safe_url

    url = resolve_db_url(db_url)
    before, after = migrate.upgrade(create_store_engine(url))
    if before == after:
        click.echo(f"{safe_url(url)} is at revision {after} (newest); nothing to do.")
    else:
        click.echo(f"{safe_url(url)}: upgraded from revision {before or 'none'} to {after}.")


@db.command("stats")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def db_stats(db_url: str | None, as_json: bool) -> None:
    """Totals: workloads, targets, shares tuned, records (and how many failed)."""
    from schedules_db import Store, inventory
    from tunesvc.report import stats_text, to_json

    store = Store(resolve_db_url(db_url))
    stats = inventory.stats(store)
    click.echo(to_json({"database": store.url, **asdict(stats)}) if as_json
               else stats_text(store.url, stats))
