"""Schema migrations: the ORM and the migrations agree, and old databases upgrade intact."""

from __future__ import annotations

import shutil
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

import pytest

from schedules_db import SliceKey, Store, StoreError
from schedules_db.migrate import head_revision, schema_state, upgrade
from schedules_db.schema import Base
from schedules_db.engine import create_store_engine
from schedules_db.inventory import stats, summaries
from schedules_db.progress import slice_progress

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# A real database written by `tunesvc tune zoo:mlp --shares 50,100 --trials-per-task 8`
# at the first released schema (revision 0001).
FIRST_SCHEMA_DB = FIXTURES / "schedules-rev0001.sqlite"
FIRST_SCHEMA_RECORDS = 32


def test_migrations_build_exactly_the_orm_schema(db_url: str) -> None:
    Store(db_url).close()  # a new database is migrated to the newest revision
    engine = create_engine(db_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert schema_state(engine).current == head_revision()


def test_database_of_the_first_schema_upgrades_without_loss(tmp_path: Path) -> None:
    copy = tmp_path / "old.sqlite"
    shutil.copy(FIRST_SCHEMA_DB, copy)
    url = f"sqlite:///{copy}"
    engine = create_store_engine(url)
    assert schema_state(engine).current == "0001"
    with pytest.raises(StoreError, match="tunesvc db upgrade"):
        Store(url)  # an old schema is never used, nor upgraded, behind the user's back
    assert upgrade(engine) == ("0001", head_revision())
    after = Store(url)
    assert stats(after).records == FIRST_SCHEMA_RECORDS
    found = summaries(after)
    assert {(s.share_percent, s.records) for s in found} == {(50, 8), (100, 8)}
    key = SliceKey(found[0].target_key, "llvm", "cpu", found[0].share_percent)
    assert after.top_records(key, found[0].workload_shash, limit=1)
    progress = slice_progress(after, key, found[0].workload_shash)
    assert (progress.records, progress.completion) == (8, None)  # new table, empty


def test_cli_upgrade_is_idempotent(tmp_path: Path, tunesvc_env: dict) -> None:
    from tests.conftest import tunesvc

    copy = tmp_path / "old.sqlite"
    shutil.copy(FIRST_SCHEMA_DB, copy)
    first = tunesvc("db", "upgrade", "--db", f"sqlite:///{copy}", env=tunesvc_env)
    assert first.returncode == 0 and "from revision 0001 to" in first.stdout
    again = tunesvc("db", "upgrade", "--db", f"sqlite:///{copy}", env=tunesvc_env)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_the_slice_key_a_target_makes_is_the_one_stored(tmp_path: Path) -> None:
    """Byte for byte: the key `ShareTarget` makes today for the target the fixture was tuned
    for is the key the fixture holds, so databases written before keep matching."""
    from tvm.target import Target

    from tunesvc.targets import ShareTarget
    from workers.shares import Share

    copy = tmp_path / "old.sqlite"
    shutil.copy(FIRST_SCHEMA_DB, copy)
    url = f"sqlite:///{copy}"
    upgrade(create_store_engine(url))
    target = Target({"kind": "llvm", "mtriple": "x86_64-conda-linux-gnu", "num-cores": 1})
    at = ShareTarget.of(target, Share("cpu", 50))
    assert at.key == SliceKey('{"keys": ["cpu"], "kind": "llvm", '
                              '"mtriple": "x86_64-conda-linux-gnu", "tag": ""}', "llvm", "cpu", 50)
    with Store(url) as store:
        assert {s.target_key for s in summaries(store)} == {at.key.target_key}
        assert store.count_records(at.key) == FIRST_SCHEMA_RECORDS // 2
    host = ShareTarget.of(Target({"kind": "llvm", "mcpu": "znver4", "mattr": ["+avx512f"],
                                  "num-cores": 2}), Share("cpu", 100))
    assert host.json == ('{"keys": ["cpu"], "kind": "llvm", "mattr": ["+avx512f"], '
                         '"mcpu": "znver4", "num-cores": 2, "tag": ""}')
    assert host.key.target_key == host.json.replace('"num-cores": 2, ', "")
