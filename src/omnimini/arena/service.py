"""The arena: anonymous battles between two contestants, turns streamed side by side, one vote each.

Conversations live in the store, written by the server as answers finish, so a vote is judged on
what the models really said (identity leak, empty or failed answers), never on what a client claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from omnimini.arena.battles_file import to_record
from omnimini.arena.board import compute_leaderboard
from omnimini.arena.contestants import Contestant, Finished, Piece, draw_pair
from omnimini.arena.rules import DAILY_VOTE_CAP, identity_pattern, void_reason
from omnimini.arena.tables import Battle, Vote
from omnimini.access.context import RequestContext, opened
from omnimini.access.limits import duration
from omnimini.protocol.common import Usage
from omnimini.protocol.errors import APIError, InvalidRequest, NotFound, RateLimitExceeded
from omnimini.service.chat import ChatService, PreparedChat
from omnimini.store import Store

log = logging.getLogger(__name__)

# Longest answer per turn, in tokens: arena answers are read side by side by a person.
MAX_ANSWER_TOKENS = 1024
MAX_PROMPT_CHARS = 20_000
# What the page sees when a side fails: the real error (which may name the model) is stored.
PUBLIC_ERROR = "This model failed to answer; the vote on this battle will not count."
# Usage-row status of an answer cut short because the client went away (nginx's "client closed request").
CLIENT_GONE = 499
# Accepted spellings of the four verdicts; stored as FastChat's.
VERDICTS = {"model_a": "model_a", "a": "model_a", "model_b": "model_b", "b": "model_b", "tie": "tie",
            "tie (bothbad)": "tie (bothbad)", "bothbad": "tie (bothbad)", "both_bad": "tie (bothbad)"}


class Conflict(APIError):
    status = 409


class Forbidden(APIError):
    status = 403
    type = "permission_error"


def _seconds_to_next_utc_day(now: float) -> float:
    day = dt.datetime.fromtimestamp(now, dt.timezone.utc).date() + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() - now


class Meter(Protocol):
    """One metered model request (server.access.MeteredRequest): a request context to open around
    the service calls, then finished exactly once with the HTTP-like status of the answer."""

    ctx: RequestContext

    async def finish(self, status: int) -> None: ...

    def finish_now(self, status: int) -> None: ...


@dataclass
class _Side:
    name: str                              # "a" or "b"
    contestant: Contestant
    messages: list[dict]
    prepared: PreparedChat | None = None   # a catalog model's admitted request
    meter: Meter | None = None
    error: Exception | None = None         # failed before answering: reported when the turn streams
    status: int = 200                      # for the usage row
    answered: bool = False
    winding_down: bool = False             # cancelled: its meter ends when its task has (partial usage)

    def final_status(self, unfinished: int) -> int:
        return self.status if self.status != 200 or self.answered else unfinished


class Turn:
    """A turn whose answers are admitted: iterate it for the events. `release()` ends what is still
    open (the in-flight count, usage rows, the battle's busy mark) when the stream never ran or
    stopped early; it is called by the stream itself at its end, and more calls do nothing."""

    def __init__(self, arena: "Arena", battle: Battle, prompt: str, sides: list[_Side]):
        self._arena, self._battle_id, self._sides = arena, battle.id, sides
        self._events = arena._run_turn(battle, prompt, sides, self)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events

    def release(self, status: int = CLIENT_GONE) -> None:
        for side in self._sides:
            if side.meter is not None and not side.winding_down:
                side.meter.finish_now(side.final_status(status))
        self._arena._busy.discard(self._battle_id)


@dataclass
class Arena:
    store: Store
    chat: ChatService
    contestants: list[Contestant]
    daily_vote_cap: int = DAILY_VOTE_CAP
    max_tokens: int = MAX_ANSWER_TOKENS
    rng: random.Random = field(default_factory=random.SystemRandom)
    clock: Callable[[], float] = time.time
    _busy: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        extra = [w for c in self.contestants for w in (c.name, c.model)]
        self._identity = identity_pattern(extra)
        self._by_name = {c.name: c for c in self.contestants}

    # ------------------------------------------------------------------ battles

    def create_battle(self, voter: str, models: list[str] | None = None) -> dict[str, Any]:
        """A new battle. Anonymous with a drawn pair; or named (models given), which never counts."""
        if models is None:
            left, right = draw_pair(self.contestants, self.rng)
        else:
            if len(models) != 2 or models[0] == models[1]:
                raise InvalidRequest("Give two different contestants.", param="models")
            unknown = [m for m in models if m not in self._by_name]
            if unknown:
                raise NotFound(f"No contestant named {unknown[0]!r}; see GET /arena/api/contestants.",
                               param="models", code="contestant_not_found")
            left, right = self._by_name[models[0]], self._by_name[models[1]]
        now = self.clock()
        battle = Battle(id="battle-" + secrets.token_hex(12), created_at=now, updated_at=now, voter=voter,
                        anonymous=models is None, model_a=left.name, model_b=right.name, conversation_a=[],
                        conversation_b=[], tokens_a=0, tokens_b=0, turns=0)
        with self.store.write() as s:
            s.add(battle)
        out: dict[str, Any] = {"id": battle.id, "anonymous": battle.anonymous}
        if not battle.anonymous:
            out.update(model_a=battle.model_a, model_b=battle.model_b)
        return out

    def _own_open_battle(self, s, battle_id: str, voter: str) -> Battle:
        battle = s.get(Battle, battle_id)
        if battle is None:
            raise NotFound(f"No battle with id {battle_id!r}.", param="battle_id", code="battle_not_found")
        if battle.voter != voter:
            raise Forbidden("This battle belongs to another voter.", param="battle_id", code="battle_not_yours")
        return battle

    async def start_turn(self, battle_id: str, voter: str, prompt: str,
                         meter: Callable[[], Meter] | None = None) -> "Turn":
        """Check everything that can fail on input, admit both answers, then return the turn to stream.

        `meter` (from the server, when it keeps a platform) opens one metered model request per
        catalog side: the caller's key, RPM/TPM and model list, the in-flight count, a usage row.
        An exhausted rate limit refuses the whole turn (429) before anything streams."""
        if not prompt.strip():
            raise InvalidRequest("The prompt is empty.", param="prompt")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(f"The prompt is longer than {MAX_PROMPT_CHARS} characters.", param="prompt")

        def load() -> Battle:
            with self.store.read() as s:
                battle = self._own_open_battle(s, battle_id, voter)
                if s.scalar(select(Vote.id).where(Vote.battle_id == battle_id)) is not None:
                    raise Conflict("This battle has been voted on; start a new round.", param="battle_id",
                                   code="battle_closed")
                return battle

        battle = await asyncio.to_thread(load)
        if battle_id in self._busy:
            raise Conflict("The previous answers are still streaming.", param="battle_id", code="turn_in_progress")
        for name in (battle.model_a, battle.model_b):
            if name not in self._by_name:
                raise Conflict("A contestant of this battle is no longer configured.", code="contestant_gone")
        self._busy.add(battle_id)
        sides = [_Side(s, self._by_name[name], [*({"role": t["role"], "content": t["content"]} for t in history),
                                                {"role": "user", "content": prompt}])
                 for s, name, history in (("a", battle.model_a, battle.conversation_a),
                                          ("b", battle.model_b, battle.conversation_b))]
        turn = Turn(self, battle, prompt, sides)
        try:
            for side in sides:
                await self._admit(side, meter)
        except RateLimitExceeded:
            for side in sides:            # an admitted side that will not run is billed nothing
                if side.meter is not None and not side.meter.ctx.rejected:
                    side.meter.ctx.usage = Usage.of(0, 0)
            turn.release(status=429)
            raise
        except BaseException:
            turn.release(status=CLIENT_GONE)
            raise
        return turn

    async def _admit(self, side: "_Side", meter: Callable[[], Meter] | None) -> None:
        """Prepare a catalog side under its own request context; a failure other than a rate limit
        is the side's (streamed as an error, the vote void), as when it fails while answering."""
        if side.contestant.base_url:          # an upstream bills its own key; it takes no local compute
            return
        side.meter = meter() if meter is not None else None
        try:
            with opened(side.meter.ctx) if side.meter else contextlib.nullcontext():
                side.prepared = await side.contestant.prepare(self.chat, side.messages, self.max_tokens)
        except RateLimitExceeded as e:        # the key's limits name the model: keep the battle blind
            if e.code != "rate_limit_exceeded":   # e.g. queue_full: the server is busy, names no model
                raise
            raise RateLimitExceeded(f"Rate limit reached on {e.type} per minute for one of this battle's models. "
                                    f"Please try again in {duration(e.retry_after)}.", retry_after=e.retry_after,
                                    limit_type=e.type, headers=e.headers) from None
        except Exception as e:                # noqa: BLE001 - reported on the side's stream
            side.error = e

    async def _run_turn(self, battle: Battle, prompt: str, sides: list["_Side"],
                        turn: "Turn") -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        results: dict[str, dict[str, Any]] = {s.name: {"text": "", "tokens": 0, "error": None} for s in sides}

        async def run_side(side: _Side) -> None:
            s, res = side.name, results[side.name]
            try:
                if side.error is not None:
                    raise side.error
                finish = "stop"
                with opened(side.meter.ctx) if side.meter else contextlib.nullcontext():
                    async for event in side.contestant.stream(self.chat, side.messages, self.max_tokens,
                                                              side.prepared):
                        if isinstance(event, Piece):
                            res["text"] += event.text
                            await queue.put({"type": "delta", "side": s, "content": event.text})
                        elif isinstance(event, Finished):
                            res["tokens"], finish = event.completion_tokens, event.finish_reason
                side.answered = True
                await queue.put({"type": "done", "side": s, "finish_reason": finish})
            except asyncio.CancelledError:
                res["error"] = res["error"] or "interrupted: the client went away"
                side.status = CLIENT_GONE
                raise
            except Exception as e:          # noqa: BLE001 - a side's failure is recorded, not raised
                res["error"] = e.message if isinstance(e, APIError) else f"{type(e).__name__}: {e}"
                side.status = e.status if isinstance(e, APIError) else 500
                log.warning("arena battle %s side %s failed: %s", battle.id, s, res["error"])
                await queue.put({"type": "error", "side": s, "message": PUBLIC_ERROR})
            finally:
                queue.put_nowait(None)

        tasks = [asyncio.create_task(run_side(side)) for side in sides]
        recorded = False
        try:
            finished = 0
            while finished < 2:
                item = await queue.get()
                if item is None:
                    finished += 1
                else:
                    yield item
            for side in sides:             # usage rows before the turn ends, so a client sees them at once
                if side.meter is not None:
                    await side.meter.finish(side.status)
            turns = await asyncio.to_thread(self._record_turn, battle.id, prompt, results)
            recorded = True
            yield {"type": "turn_end", "turn": turns}
        finally:
            for side, t in zip(sides, tasks):
                if not t.done() and side.meter is not None:
                    # The service reports what was generated when its stream closes, in the task:
                    # write the usage row after that (no await here: the stream may be cancelled).
                    side.winding_down = True
                    t.add_done_callback(lambda _t, side=side: side.meter.finish_now(side.final_status(CLIENT_GONE)))
                t.cancel()
            if not recorded:               # the client went away: keep what was said, marked failed
                for res in results.values():
                    res["error"] = res["error"] or "interrupted: the client went away"
                self._record_turn(battle.id, prompt, results)
            turn.release(status=CLIENT_GONE)

    def _record_turn(self, battle_id: str, prompt: str, results: dict[str, dict[str, Any]]) -> int:
        with self.store.write() as s:
            battle = s.get(Battle, battle_id)
            user = {"role": "user", "content": prompt}
            battle.conversation_a = [*battle.conversation_a, user,
                                     {"role": "assistant", "content": results["a"]["text"]}]
            battle.conversation_b = [*battle.conversation_b, user,
                                     {"role": "assistant", "content": results["b"]["text"]}]
            battle.tokens_a += results["a"]["tokens"]
            battle.tokens_b += results["b"]["tokens"]
            battle.error_a = battle.error_a or results["a"]["error"]
            battle.error_b = battle.error_b or results["b"]["error"]
            battle.turns += 1
            battle.updated_at = self.clock()
            return battle.turns

    # -------------------------------------------------------------------- votes

    def vote(self, battle_id: str, voter: str, winner: str) -> dict[str, Any]:
        verdict = VERDICTS.get(str(winner).strip().lower()) if isinstance(winner, str) else None
        if verdict is None:
            raise InvalidRequest(f"Invalid winner {winner!r}: use model_a, model_b, tie or tie (bothbad).",
                                 param="winner")
        if battle_id in self._busy:
            raise Conflict("The answers are still streaming; vote when they are done.", param="battle_id",
                           code="turn_in_progress")
        now = self.clock()
        try:
            with self.store.write() as s:       # SQLite: BEGIN IMMEDIATE, so cap check + insert are atomic
                battle = self._own_open_battle(s, battle_id, voter)
                existing = s.scalar(select(Vote).where(Vote.battle_id == battle_id))
                if existing is not None:
                    raise Conflict(f"This battle already has a vote ({existing.winner}); one vote per battle.",
                                   param="battle_id", code="already_voted")
                if battle.turns == 0:
                    raise InvalidRequest("This battle has no answers yet: send a prompt first.",
                                         param="battle_id", code="no_answers")
                wait = _seconds_to_next_utc_day(now)
                today = s.scalar(select(func.count(Vote.id)).where(Vote.voter == voter,
                                                                   Vote.voted_at >= now - (86400 - wait)))
                if today >= self.daily_vote_cap:
                    raise RateLimitExceeded(f"Daily vote cap reached ({self.daily_vote_cap} votes per voter "
                                            f"per day); try again tomorrow (UTC).", retry_after=wait)
                reason = void_reason(anonymous=battle.anonymous,
                                     conversations={"a": battle.conversation_a, "b": battle.conversation_b},
                                     errors={"a": battle.error_a, "b": battle.error_b}, pattern=self._identity)
                s.add(Vote(battle_id=battle_id, voter=voter, winner=verdict, voted_at=now,
                           counted=reason is None, void_reason=reason))
        except IntegrityError as e:            # a concurrent second vote lost the race
            raise Conflict("This battle already has a vote; one vote per battle.", param="battle_id",
                           code="already_voted") from e
        return {"battle_id": battle_id, "winner": verdict, "model_a": battle.model_a, "model_b": battle.model_b,
                "counted": reason is None, "void_reason": reason}

    # -------------------------------------------------------------- leaderboard

    def leaderboard(self, *, style: bool = False) -> dict[str, Any]:
        records = stored_records(self.store, include_void=True)
        counted = [r for r in records if r["counted"]]
        rows = compute_leaderboard(counted, style=style)
        return {"style_control": style, "counted_votes": len(counted), "void_votes": len(records) - len(counted),
                "leaderboard": [r.as_dict() for r in rows]}


def stored_records(store: Store, *, include_void: bool = False) -> list[dict[str, Any]]:
    """Voted battles as FastChat-style records, oldest vote first (online Elo depends on order)."""
    with store.read() as s:
        q = select(Battle, Vote).join(Vote, Vote.battle_id == Battle.id).order_by(Vote.voted_at, Vote.id)
        if not include_void:
            q = q.where(Vote.counted.is_(True))
        return [to_record(b, v, with_status=True) for b, v in s.execute(q).all()]
