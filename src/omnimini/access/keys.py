"""API keys: created with a random secret shown once, stored as its SHA-256.

A SHA-256 (not a slow password hash) is right for keys: they are 256-bit random secrets, so there
is nothing to brute-force, and verifying one per request must be cheap (GitHub's token scheme).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import or_, select

from omnimini.access.tables import ApiKey
from omnimini.store import Store

KEY_PREFIX = "sk-omni-"
SECRET_BYTES = 32
SHOWN_PREFIX_CHARS = len(KEY_PREFIX) + 4


@dataclass(frozen=True)
class Principal:
    """Who is asking: the key's id and name and its limits."""

    key_id: str
    name: str
    rpm: int | None = None
    tpm: int | None = None
    models: tuple[str, ...] | None = None      # None: every model
    admin: bool = False
    hierarchy: str | None = None               # instruction-hierarchy policy (issue 7); None: the model's

    @classmethod
    def of(cls, row: ApiKey) -> "Principal":
        models = tuple(m for m in (row.models or "").split(",") if m) or None
        return cls(row.id, row.name, row.rpm, row.tpm, models, bool(row.admin), row.hierarchy)

    def may_use(self, names: tuple[str, ...]) -> bool:
        """`names`: a snapshot id and its aliases; a key listing any of them may use the snapshot."""
        return self.models is None or any(n in self.models for n in names)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    principal: Principal
    secret: str          # shown once, never stored


class KeyNotFound(LookupError):
    pass


class Keys:
    def __init__(self, store: Store):
        self.store = store

    def create(self, name: str, *, rpm: int | None = None, tpm: int | None = None,
               models: list[str] | None = None, admin: bool = False,
               hierarchy: str | None = None) -> CreatedKey:
        for label, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value < 1:
                raise ValueError(f"{label} must be at least 1")
        secret = KEY_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
        row = ApiKey(id="key_" + secrets.token_hex(12), name=name, hash=_hash(secret),
                     prefix=secret[:SHOWN_PREFIX_CHARS], rpm=rpm, tpm=tpm,
                     models=",".join(models) if models else None, admin=admin,
                     created_at=time.time(), revoked_at=None, hierarchy=hierarchy)
        with self.store.write() as s:
            s.add(row)
        return CreatedKey(Principal.of(row), secret)

    def verify(self, secret: str) -> Principal | None:
        """The principal of a live key, or None for an unknown or revoked one."""
        with self.store.read() as s:
            row = s.scalars(select(ApiKey).where(ApiKey.hash == _hash(secret))).first()
        if row is None or row.revoked_at is not None:
            return None
        return Principal.of(row)

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        with self.store.read() as s:
            q = select(ApiKey).order_by(ApiKey.created_at)
            if not include_revoked:
                q = q.where(ApiKey.revoked_at.is_(None))
            return list(s.scalars(q))

    def find(self, id_or_name: str) -> ApiKey:
        """By id, or by name when exactly one live key has it."""
        with self.store.read() as s:
            rows = list(s.scalars(select(ApiKey).where(or_(ApiKey.id == id_or_name, ApiKey.name == id_or_name))))
        by_id = [r for r in rows if r.id == id_or_name]
        if by_id:
            return by_id[0]
        live = [r for r in rows if r.revoked_at is None]
        if len(live) == 1:
            return live[0]
        if len(live) > 1:
            raise KeyNotFound(f"{len(live)} live keys are named {id_or_name!r}; use the key id")
        if rows:
            return rows[0]
        raise KeyNotFound(f"no key with id or name {id_or_name!r}")

    def revoke(self, id_or_name: str) -> ApiKey:
        key = self.find(id_or_name)
        with self.store.write() as s:
            row = s.get(ApiKey, key.id)
            if row.revoked_at is None:
                row.revoked_at = time.time()
        return row
