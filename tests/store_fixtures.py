"""Fixtures for tests that need a store: `store_url` runs once on SQLite and once on a real
PostgreSQL (skipped when none can be started). Import them into a test module to use them."""

from __future__ import annotations

import atexit
import itertools
import time

import pytest

import pg

_names = itertools.count()


_server: pg.TempPostgres | None = None


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL for the whole run, however many modules import this fixture."""
    global _server
    if not pg.available():
        pytest.skip("PostgreSQL (Debian's postgresql and psycopg) is not installed")
    if _server is None:
        _server = pg.TempPostgres()
        atexit.register(_server.stop)
    return _server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'omnimini.db'}"
    return request.getfixturevalue("pg_server").fresh_database(f"t{next(_names)}")


def usage_rows(store, n: int, *where, timeout: float = 20) -> list:
    """The usage rows matching `where` (SQLAlchemy conditions on UsageRecord), oldest first, once
    there are at least n or `timeout` passed. The server writes a row after a response's last byte,
    so a test that has just read a response must wait for it."""
    from sqlalchemy import select

    from omnimini.metering.tables import UsageRecord
    deadline = time.monotonic() + timeout
    while True:
        with store.read() as s:
            rows = list(s.scalars(select(UsageRecord).where(*where).order_by(UsageRecord.id)))
            for r in rows:
                s.expunge(r)
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)
