"""A throw-away PostgreSQL server on loopback for the store tests, when Debian's postgresql is
installed (`.ci/run` installs it). Runs as the `postgres` user when we are root (initdb refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def available() -> bool:
    if not (_bin("initdb") and _bin("pg_ctl")):
        return False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return True


class TempPostgres:
    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = Path(tempfile.mkdtemp(prefix="omnimini-pg-"))
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        data = self.dir / "data"
        self._run([_bin("initdb"), "-D", str(data), "-U", "omnimini", "--auth=trust", "-E", "UTF8"])
        self._run([_bin("pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w", "start",
                   "-o", f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=200 -c fsync=off"])
        self.data = data
        self.url = f"postgresql+psycopg://omnimini@127.0.0.1:{self.port}/postgres"
        deadline = time.monotonic() + 30
        import psycopg
        while True:
            try:
                psycopg.connect(f"host=127.0.0.1 port={self.port} user=omnimini dbname=postgres").close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _run(self, cmd: list[str]) -> None:
        subprocess.run([*self.prefix, *cmd], check=True, capture_output=True, cwd=self.dir)

    def fresh_database(self, name: str) -> str:
        import psycopg
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=omnimini dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://omnimini@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run([*self.prefix, _bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-W", "stop"],
                       capture_output=True, cwd=self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
