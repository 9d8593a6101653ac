"""The arena: anonymous battles between two contestants, turns streamed side by side, one vote each.

Conversations live in the store, written by the server as answers finish, so a vote is judged on
what the models really said (identity leak, empty or failed answers), never on what a client claims.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from omnimini.arena.battles_file import to_record
from omnimini.arena.board import compute_leaderboard
from omnimini.arena.contestants import Contestant, Finished, Piece, draw_pair
from omnimini.arena.rules import DAILY_VOTE_CAP, identity_pattern, void_reason
from omnimini.arena.tables import Battle, Vote
from omnimini.protocol.errors import APIError, InvalidRequest, NotFound, RateLimitExceeded
from omnimini.service.chat import ChatService
from omnimini.store import Store

log = logging.getLogger(__name__)

# Longest answer per turn, in tokens: arena answers are read side by side by a person.
MAX_ANSWER_TOKENS = 1024
MAX_PROMPT_CHARS = 20_000
# What the page sees when a side fails: the real error (which may name the model) is stored.
PUBLIC_ERROR = "This model failed to answer; the vote on this battle will not count."
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

    async def start_turn(self, battle_id: str, voter: str, prompt: str) -> AsyncIterator[dict[str, Any]]:
        """Check everything that can fail on input, then return the stream of both answers."""
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
        return self._run_turn(battle, prompt)

    async def _run_turn(self, battle: Battle, prompt: str) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        results: dict[str, dict[str, Any]] = {s: {"text": "", "tokens": 0, "error": None} for s in "ab"}

        async def side(s: str, contestant: Contestant, history: list[dict]) -> None:
            res = results[s]
            try:
                messages = [*({"role": t["role"], "content": t["content"]} for t in history),
                            {"role": "user", "content": prompt}]
                finish = "stop"
                async for event in contestant.stream(self.chat, messages, self.max_tokens):
                    if isinstance(event, Piece):
                        res["text"] += event.text
                        await queue.put({"type": "delta", "side": s, "content": event.text})
                    elif isinstance(event, Finished):
                        res["tokens"], finish = event.completion_tokens, event.finish_reason
                await queue.put({"type": "done", "side": s, "finish_reason": finish})
            except asyncio.CancelledError:
                res["error"] = res["error"] or "interrupted: the client went away"
                raise
            except Exception as e:          # noqa: BLE001 - a side's failure is recorded, not raised
                res["error"] = e.message if isinstance(e, APIError) else f"{type(e).__name__}: {e}"
                log.warning("arena battle %s side %s failed: %s", battle.id, s, res["error"])
                await queue.put({"type": "error", "side": s, "message": PUBLIC_ERROR})
            finally:
                queue.put_nowait(None)

        tasks = [asyncio.create_task(side("a", self._by_name[battle.model_a], battle.conversation_a)),
                 asyncio.create_task(side("b", self._by_name[battle.model_b], battle.conversation_b))]
        recorded = False
        try:
            finished = 0
            while finished < 2:
                item = await queue.get()
                if item is None:
                    finished += 1
                else:
                    yield item
            turns = await asyncio.to_thread(self._record_turn, battle.id, prompt, results)
            recorded = True
            yield {"type": "turn_end", "turn": turns}
        finally:
            for t in tasks:
                t.cancel()
            if not recorded:               # the client went away: keep what was said, marked failed
                for res in results.values():
                    res["error"] = res["error"] or "interrupted: the client went away"
                self._record_turn(battle.id, prompt, results)
            self._busy.discard(battle.id)

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
