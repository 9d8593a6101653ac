"""The store: migrations apply from the package, one head, WAL on SQLite, write transactions that
serialise read-modify-write across threads and processes (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import threading

from sqlalchemy import text

from omnimini.store import Store
from omnimini.store.migrate import current, heads, script
from omnimini.store.schema import differences
from store_fixtures import pg_server, store_url  # noqa: F401


def test_one_head_and_a_linear_chain():
    assert len(heads()) == 1, f"several heads: {heads()} (chain your down_revision on the head)"
    revs = list(script().walk_revisions())
    assert all(len(r.revision) <= 32 for r in revs), "alembic_version holds at most 32 characters"
    assert revs[-1].down_revision is None
    assert all(not r.is_merge_point or r.down_revision for r in revs)


def test_migrates_to_head_and_matches_declared_tables(store_url):
    store = Store.open(store_url)
    assert current(store) == tuple(heads())
    store.migrate()                       # idempotent
    assert differences(store) == []
    store.close()


def test_sqlite_is_wal_under_the_data_dir(tmp_path):
    from omnimini.settings import Settings
    url = Settings(data_dir=tmp_path / "d").store_url
    store = Store.open(url)
    assert (tmp_path / "d" / "omnimini.db").exists()
    with store.read() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1


def _prepare_counter(store: Store) -> None:
    with store.write() as s:
        s.execute(text("CREATE TABLE IF NOT EXISTS counter_test (id INTEGER PRIMARY KEY, n INTEGER)"))
        s.execute(text("DELETE FROM counter_test"))
        s.execute(text("INSERT INTO counter_test VALUES (1, 0)"))


def _increment(store: Store, times: int) -> None:
    for _ in range(times):
        with store.write() as s:     # read, then write: a lost update unless serialised
            n = s.execute(text("SELECT n FROM counter_test WHERE id = 1 FOR UPDATE" if not store.is_sqlite
                               else "SELECT n FROM counter_test WHERE id = 1")).scalar()
            s.execute(text("UPDATE counter_test SET n = :n WHERE id = 1"), {"n": n + 1})


def _process_worker(url: str, times: int) -> None:
    store = Store(url)
    _increment(store, times)
    store.close()


def test_write_transactions_serialise_threads_and_processes(store_url):
    store = Store.open(store_url)
    _prepare_counter(store)
    threads = [threading.Thread(target=_increment, args=(store, 25)) for _ in range(4)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_worker, args=(store_url, 25)) for _ in range(2)]
    for t in [*threads, *procs]:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with store.read() as s:
        assert s.execute(text("SELECT n FROM counter_test")).scalar() == 150
    store.close()


def _open(url: str) -> None:
    Store.open(url).close()


def test_servers_starting_together_migrate_once(store_url):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open, args=(store_url,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert current(Store(store_url)) == tuple(heads())


def test_migrations_ship_inside_the_package():
    import omnimini.store.migrate as m
    assert (m.MIGRATIONS_DIR / "env.py").exists() and (m.MIGRATIONS_DIR / "script.py.mako").exists()
    assert m.MIGRATIONS_DIR.is_relative_to(__import__("pathlib").Path(m.__file__).parent)


def test_revision_command_chains_on_the_head(tmp_path, monkeypatch):
    import shutil

    import omnimini.store.migrate as m
    copy = tmp_path / "migrations"
    shutil.copytree(m.MIGRATIONS_DIR, copy)
    monkeypatch.setattr(m, "MIGRATIONS_DIR", copy)
    head = m.heads()[0]
    path = m.revision("add widgets")
    assert m.heads() != [head] and len(m.heads()) == 1
    assert f"down_revision = {head!r}" in open(path).read()


def test_files_expire_and_orphans_are_swept(tmp_path):
    import os
    import time

    from omnimini.store.files import FileStore, FileTooLarge
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    files = FileStore(store, tmp_path / "files")
    gone = files.create([b"old"], filename="a", purpose="batch", key_id=None, expires_at=int(time.time()) - 1)
    kept = files.create([b"new"], filename="b", purpose="batch", key_id=None)
    assert files.get(gone.id) is None and [f.id for f in files.list(key_id=None, all_keys=True)] == [kept.id]
    assert files.delete_expired() == 1 and not files.path(gone.id).exists()
    assert files.path(kept.id).read_bytes() == b"new"
    orphan, _ = files.write_bytes([b"never recorded"])
    os.utime(files.path(orphan), (0, 0))                  # older than the grace period
    assert files.sweep() == 1 and not files.path(orphan).exists() and files.path(kept.id).exists()
    try:
        files.create([b"x" * 10], filename="c", purpose="batch", key_id=None, max_bytes=5)
    except FileTooLarge:
        pass
    assert [p.name for p in (tmp_path / "files").iterdir()] == [kept.id]   # no partial file left
