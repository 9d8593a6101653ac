"""The platform around the model, wired into the app: the store, API keys and rate limits (a
middleware on /v1), usage rows, the Files and Batch APIs, and the batch worker's life cycle."""

from __future__ import annotations

import ipaddress
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request

from omnimini.access.keys import Keys, Principal
from omnimini.access.limits import RateLimiter
from omnimini.batches.service import BatchService
from omnimini.store import Store
from omnimini.store.files import FileStore

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Platform:
    store: Store
    keys: Keys
    limiter: RateLimiter
    files: FileStore
    batches: BatchService
    auth: bool
    max_file_bytes: int
    inflight: int = 0                 # interactive model requests now running (the batch worker yields)
    worker: Any = None                # batches.worker.BatchWorker once the app has started

    @classmethod
    def open(cls, settings, *, auth: bool) -> "Platform":
        store = Store.open(settings.store_url)
        files = FileStore(store, settings.data_path / "files")
        return cls(store, Keys(store), RateLimiter(store, settings.rate_limit_window), files,
                   BatchService(store, files), auth, settings.max_file_bytes)

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()


def platform_of(request: Request) -> Platform:
    return request.app.state.platform


def caller(request: Request) -> tuple[str | None, bool]:
    """(key id, sees everyone's objects): no-auth mode and admin keys see all."""
    p: Principal | None = request.scope.get("state", {}).get("principal")
    if p is None:
        return None, True
    return p.key_id, p.admin


def install(app: FastAPI, platform: Platform) -> None:
    from omnimini.batches.worker import BatchWorker
    from omnimini.server import routes_batches, routes_files, routes_usage
    from omnimini.server.access import PlatformMiddleware

    app.state.platform = platform
    for spec in app.state.runtime.catalog.specs():
        if spec.shutdown_date:
            log.warning("model %s is deprecated: it answers until %s, then 404s", spec.id, spec.shutdown_date)
    app.add_middleware(PlatformMiddleware, platform=platform)
    for module in (routes_files, routes_batches, routes_usage):
        app.include_router(module.router)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI):
        async with inner(a) as state:
            platform.worker = BatchWorker(platform.store, platform.files, a.state.runtime,
                                          is_busy=lambda: platform.inflight > 0)
            platform.worker.start()
            try:
                yield state
            finally:
                await platform.worker.stop()
                platform.store.close()

    app.router.lifespan_context = lifespan
