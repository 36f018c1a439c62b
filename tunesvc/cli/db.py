"""`tunesvc db ...`: what the schedule database holds, and upgrading its schema."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tunesvc.cli.common import db_option, target_option
from tunesvc.config import resolve_db_url

if TYPE_CHECKING:
    from schedules_db import SliceKey, Store


@click.group()
def db() -> None:
    """Inspect the schedule database."""


def model_name(model: str) -> str:
    """How the database names a model: a zoo or torch: name as given, a file by its
    absolute path."""
    return str(Path(model).resolve()) if Path(model).is_file() else model


def slice_workloads(store: Store, key: SliceKey, model: str | None) -> list[str]:
    """The workloads holding records in slice `key`: all, or `model`'s only."""
    from schedules_db import inventory
    from schedules_db.model_registry import model_tasks

    mine = None if model is None else {t.workload_shash for t in
                                       model_tasks(store, model_name(model))}
    return [r.workload_shash for r in inventory.summaries(store, shashes=mine, key=key)]


model_option = click.option("--model", metavar="MODEL",
                            help="Only this model's workloads (a zoo or torch: name or an "
                                 "ONNX file, as it was tuned).")


@db.command("records")
@db_option
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def db_records(db_url: str | None, model: str | None, as_json: bool) -> None:
    """Per workload, target and share: the model tasks it serves, best latency, number of
    records, when tuned."""
    from schedules_db import Store, inventory
    from schedules_db.model_registry import model_tasks, names_by_workload
    from tunesvc.report.text import records_table, to_json

    with Store(resolve_db_url(db_url)) as store:
        names = names_by_workload(store)
        mine = None if model is None else {t.workload_shash for t in
                                           model_tasks(store, model_name(model))}
        rows = inventory.summaries(store, shashes=mine)
    if as_json:
        click.echo(to_json([{**asdict(r), "tasks": names.get(r.workload_shash, [])}
                            for r in rows]))
    elif not rows:
        click.echo(f"No tuning records{f' of {model}' if model else ''} in {store.url}.")
    else:
        click.echo(records_table(rows, names))


@db.command("delete")
@db_option
@click.option("--model", metavar="MODEL", required=True,
              help="Delete the records of this model's workloads (a zoo or torch: name or "
                   "an ONNX file, as it was tuned).")
@click.option("--share", type=click.IntRange(1, 100), metavar="P",
              help="Only the records tuned at this share percent [default: every share].")
@click.option("--yes", is_flag=True, help="Do not ask before deleting.")
def db_delete(db_url: str | None, model: str, share: int | None, yes: bool) -> None:
    """Delete a model's tuning records (all, or at one share), after asking.

    Workloads another model uses too lose their records for that model as well; the
    question says how many such workloads there are.
    """
    from schedules_db import Store
    from schedules_db.model_registry import model_tasks, names_by_workload
    from schedules_db.deletion import count_records_of, delete_records_of

    with Store(resolve_db_url(db_url)) as store:
        name = model_name(model)
        shashes = sorted({t.workload_shash for t in model_tasks(store, name)})
        if not shashes:
            raise click.ClickException(f"no model named {name} in {store.url} (see `tunesvc "
                                       f"db records`)")
        count = count_records_of(store, shashes, share)
        where = f" at {share}%" if share is not None else ""
        if count == 0:
            click.echo(f"{name} has no records{where}; nothing to delete.")
            return
        shared = sum(1 for s, tasks in names_by_workload(store).items()
                     if s in shashes and any(t.model != name for t in tasks))
        also = f" ({shared} of them also used by other models)" if shared else ""
        if not yes:
            click.confirm(f"Delete {count} records{where} of {len(shashes)} workloads of "
                          f"{name}{also}?", abort=True)
        click.echo(f"Deleted {delete_records_of(store, shashes, share)} records{where}.")


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
    from tunesvc.report.text import stats_text, to_json

    with Store(resolve_db_url(db_url)) as store:
        stats = inventory.stats(store)
    click.echo(to_json({"database": store.url, **asdict(stats)}) if as_json
               else stats_text(store.url, stats))


@db.command("export")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--share", type=click.IntRange(1, 100), metavar="P", required=True,
              help="Export the records tuned at this share (MetaSchedule's format has no "
                   "shares).")
@target_option
@model_option
@click.option("--top", type=click.IntRange(1), metavar="N",
              help="Only the N best records per workload [default: all successful ones].")
@db_option
def db_export(folder: Path, share: int, target: str, model: str | None, top: int | None,
              db_url: str | None) -> None:
    """Write one share's records to FOLDER as a MetaSchedule JSON database
    (database_workload.json, database_tuning_record.json), which stock TVM reads with
    `ms.database.JSONDatabase(work_dir=FOLDER)`."""
    from schedules_db import Store
    from schedules_db.interchange import export_slice
    from tunesvc.targets import TargetSpec
    from workers.shares import Share

    spec = TargetSpec(target)
    key = spec.at(Share(spec.share_kind, share)).key
    with Store(resolve_db_url(db_url)) as store:
        in_slice = slice_workloads(store, key, model)
        written = export_slice(store, key, in_slice, folder, top)
    click.echo(f"Wrote {written} records of {len(in_slice)} workloads ({key.share_kind}:"
               f"{share}%) to {folder}.")


@db.command("import")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--share", type=click.IntRange(1, 100), metavar="P", required=True,
              help="The share the records were tuned at (MetaSchedule's format does not say).")
@click.option("--share-kind", type=click.Choice(["cpu", "gpu"]), default="cpu",
              show_default=True, help="What the share is of.")
@db_option
def db_import(folder: Path, share: int, share_kind: str, db_url: str | None) -> None:
    """Add the records of a MetaSchedule JSON database in FOLDER (from stock TVM or `db
    export`) as tuned at a share; each keeps its own target."""
    from schedules_db import Store
    from schedules_db.interchange import RECORD_FILE, WORKLOAD_FILE, import_folder

    for name in (WORKLOAD_FILE, RECORD_FILE):
        if not (folder / name).is_file():
            raise click.ClickException(f"{folder} has no {name}: not a MetaSchedule JSON "
                                       f"database")
    with Store(resolve_db_url(db_url)) as store:
        added = import_folder(store, folder, share_kind, share)
    click.echo(f"Imported {added} records from {folder} as {share_kind}:{share}%.")


@db.command("check")
@click.option("--share", type=click.IntRange(1, 100), metavar="P", required=True,
              help="Check the records tuned at this share.")
@target_option
@model_option
@db_option
def db_check(share: int, target: str, model: str | None, db_url: str | None) -> None:
    """Run each workload's best record at one share beside TVM's default schedule on random
    inputs, and mark each that computes wrong outputs failed, until a workload's best
    agrees: what every tuning job does for its own slice, for records stored before."""
    from schedules_db import Store
    from schedules_db.ms_adapter import stored_workload
    from tunesvc.errors import UserError
    from tunesvc.targets import TargetSpec
    from workers.cpu_isa import host_mismatch
    from workers.shares import Share
    from workers.verify import verify_best

    spec = TargetSpec(target)
    at = spec.at(Share(spec.share_kind, share))
    problem = host_mismatch(at.attrs)
    if problem is not None:
        raise UserError(f"cannot run these records here: {problem}")
    with Store(resolve_db_url(db_url)) as store:
        shashes = slice_workloads(store, at.key, model)
        wrong = 0
        for done, shash in enumerate(shashes, 1):
            found = verify_best(store, at.key, shash, stored_workload(store, shash).mod,
                                at.target)
            wrong += len(found)
            for d in found:
                click.echo(f"[{done}/{len(shashes)}] workload {shash}: record {d.record_id} "
                           f"computes wrong outputs (max abs error {d.max_abs_error:.3g}, "
                           f"tolerance {d.tolerance:.3g}): marked failed")
    click.echo(f"Checked the best records of {len(shashes)} workloads "
               f"({at.share.label}): {wrong} computed wrong outputs, marked failed.")
