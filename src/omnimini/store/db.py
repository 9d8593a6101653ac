"""One `Store` per process: the engine, transactions, and migrations to the newest schema.

SQLite is opened in WAL mode (readers never block the writer) with a busy timeout, and write
transactions start with `BEGIN IMMEDIATE`: they take SQLite's write lock up front, so a
read-then-write (a rate-limit check, claiming a batch line) is serialised across threads and
processes instead of failing with SQLITE_BUSY when it upgrades its lock. On PostgreSQL a write
transaction is an ordinary READ COMMITTED one; code that must serialise takes a row lock
(`SELECT ... FOR UPDATE`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

# How long a SQLite connection waits for another writer before giving up (sqlite3 `timeout`).
SQLITE_BUSY_TIMEOUT_S = 30.0
DB_FILENAME = "omnimini.db"
# Threads for store calls from async code (`await store.run(fn, ...)`): their own pool, so that a
# rate-limit check never queues behind model computations in asyncio's default executor.
STORE_THREADS = 8


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir.expanduser() / DB_FILENAME).resolve()}"


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (SQLAlchemy's
        # "pysqlite serializable isolation" recipe), so that we can say BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")     # durable across process kills in WAL mode
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


class Store:
    """The database of one deployment. Thread-safe; share one per process."""

    def __init__(self, url: str):
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = _sqlite_engine(url)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._executor = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="omnimini-store")
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(write=True), expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> "Store":
        store = cls(url)
        if migrate:
            store.migrate()
        return store

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back on an exception."""
        with self._write() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    async def run(self, fn, *args, **kwargs):
        """Run a blocking store call from async code on the store's own threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def migrate(self, revision: str = "head") -> None:
        from omnimini.store.migrate import upgrade
        with self._migration_lock():
            upgrade(self, revision)

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Several servers may start at once on one store: one migrates, the others wait."""
        if self.is_sqlite and self.url.database not in (None, "", ":memory:"):
            with open(f"{self.url.database}.migrate.lock", "a") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                yield
        else:
            yield          # PostgreSQL: env.py takes an advisory lock inside the migration transaction

    def close(self) -> None:
        self._executor.shutdown(wait=False)
        self.engine.dispose()
