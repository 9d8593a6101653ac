"""The arena's pages and its small JSON/SSE API; each route hands off to `omnimini.arena`.

Pages: /arena (blind battle), /arena/leaderboard, /playground (chat with one model through
/v1/chat/completions). Static files come from the `omnimini.web` package data; nothing from a CDN.
With `--auth`, /arena/api needs an API key like /v1 (the platform middleware checks it; the pages
ask for it once and keep it in the tab's sessionStorage), the voter is the key, and each side of a
turn is a metered model request of that key (server.access.MeteredRequest).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from omnimini.arena.config import build_arena
from omnimini.arena.service import Arena
from omnimini.protocol.errors import NotFound
from omnimini.server.access import MeteredRequest
from omnimini.server.sse import sse_response

# The endpoint named on an arena answer's usage row.
TURN_ENDPOINT = "/arena/api/battles/{battle_id}/turns"
VOTER_COOKIE = "omnimini_voter"
VOTER_COOKIE_MAX_AGE = 365 * 86400
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
PAGES = {"/arena": "arena.html", "/arena/leaderboard": "leaderboard.html", "/playground": "playground.html"}

router = APIRouter()
_build_lock = asyncio.Lock()


class NewBattle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[str] | None = Field(None, description="Two contestants for a named (not counted) battle.")


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str


class Ballot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    winner: str


async def _arena(request: Request) -> Arena:
    state = request.app.state
    if getattr(state, "arena", None) is None:
        async with _build_lock:
            if getattr(state, "arena", None) is None:
                runtime = state.runtime
                platform = getattr(state, "platform", None)       # issue 5's store, when serve opened one
                store = platform.store if platform is not None else None
                if store is None:          # no shared store on this app: the default one in the data dir
                    from omnimini.settings import Settings
                    from omnimini.store import Store, default_url
                    url = Settings().database_url or default_url(runtime.engines.data_dir)
                    store = await asyncio.to_thread(Store.open, url)
                state.arena = await asyncio.to_thread(build_arena, runtime.catalog, runtime.chat, store)
    return state.arena


def _platform(request: Request):
    return getattr(request.app.state, "platform", None)


def _principal(request: Request):
    """The key the platform middleware verified (None without auth)."""
    return request.scope.get("state", {}).get("principal")


def _voter(request: Request) -> tuple[str, str | None]:
    """(voter id, new cookie to set). With auth: the verified key, which no cookie can change.
    Without: an API key (hashed) if one is sent, else the voter cookie."""
    principal = _principal(request)
    if principal is not None:
        return "key-" + principal.key_id, None
    platform = _platform(request)
    if platform is not None and platform.auth:       # a page (outside /arena/api): no cookie voter
        return "", None
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return "key-" + hashlib.sha256(auth[7:].strip().encode()).hexdigest()[:32], None
    cookie = request.cookies.get(VOTER_COOKIE)
    if cookie and 8 <= len(cookie) <= 64 and cookie.isalnum():
        return "cookie-" + cookie, None
    fresh = secrets.token_hex(16)
    return "cookie-" + fresh, fresh


def _with_cookie(response: Response, fresh: str | None) -> Response:
    if fresh:
        response.set_cookie(VOTER_COOKIE, fresh, max_age=VOTER_COOKIE_MAX_AGE, httponly=True, samesite="lax")
    return response


def _static(name: str) -> Response:
    suffix = name[name.rfind("."):] if "." in name else ""
    path = resources.files("omnimini.web").joinpath(name)
    if "/" in name or suffix not in STATIC_TYPES or not path.is_file():
        raise NotFound(f"No such file: {name}")
    return Response(path.read_bytes(), media_type=STATIC_TYPES[suffix], headers={"Cache-Control": "no-cache"})


def _page(name: str):
    async def page(request: Request) -> Response:
        _, fresh = _voter(request)
        return _with_cookie(_static(name), fresh)
    return page


for _path, _name in PAGES.items():
    router.add_api_route(_path, _page(_name), methods=["GET"], include_in_schema=False)


@router.get("/arena/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    return _static(name)


@router.get("/arena/api/contestants")
async def contestants(request: Request) -> dict[str, Any]:
    arena = await _arena(request)
    return {"contestants": [{"name": c.name, "upstream": bool(c.base_url), "weight": c.weight}
                            for c in arena.contestants]}


@router.post("/arena/api/battles")
async def new_battle(request: Request, body: NewBattle | None = None) -> Response:
    arena = await _arena(request)
    voter, fresh = _voter(request)
    battle = await asyncio.to_thread(arena.create_battle, voter, body.models if body else None)
    return _with_cookie(JSONResponse(battle), fresh)


@router.post("/arena/api/battles/{battle_id}/turns")
async def turn(battle_id: str, body: Turn, request: Request) -> Response:
    arena = await _arena(request)
    voter, _ = _voter(request)
    platform = _platform(request)
    principal = _principal(request)
    meter = (lambda: MeteredRequest(platform, principal, TURN_ENDPOINT)) if platform is not None else None
    turn_events = await arena.start_turn(battle_id, voter, body.prompt, meter=meter)
    return _Releasing(sse_response(turn_events), turn_events.release)


class _Releasing(Response):
    """Sends `inner`, then calls `release` however it ended, also when the stream never started
    (a client gone before the first byte), so a turn never stays in flight."""

    def __init__(self, inner: Response, release):
        self.inner, self.release, self.background = inner, release, None

    async def __call__(self, scope, receive, send) -> None:
        try:
            await self.inner(scope, receive, send)
        finally:
            self.release()


@router.post("/arena/api/battles/{battle_id}/vote")
async def vote(battle_id: str, body: Ballot, request: Request) -> Response:
    arena = await _arena(request)
    voter, _ = _voter(request)
    return JSONResponse(await asyncio.to_thread(arena.vote, battle_id, voter, body.winner))


@router.get("/arena/api/leaderboard")
async def leaderboard(request: Request, style: bool = False) -> Response:
    arena = await _arena(request)
    return JSONResponse(await asyncio.to_thread(arena.leaderboard, style=style))


@router.get("/arena/api/chat-models")
async def chat_models(request: Request) -> dict[str, Any]:
    """Catalog chat models by every name they answer to, for the playground."""
    catalog = request.app.state.runtime.catalog
    return {"models": [n for spec in catalog.specs() if spec.kind == "chat" for n in (*spec.aliases, spec.id)]}
