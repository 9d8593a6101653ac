"""The store (layer 1): SQLAlchemy 2 over SQLite (WAL, the embedded default) or PostgreSQL by URL,
with Alembic migrations shipped inside the package and applied at start-up.

Tables are declared with `Base` by the package that owns them; their migrations live in
`store/migrations/versions/` as one chain (see /work/notes/store-ready.md and `omnimini db --help`).
"""

from omnimini.store.base import Base
from omnimini.store.db import Store, default_url

__all__ = ["Base", "Store", "default_url"]
