"""Settings: one typed object, read from flags and OMNIMINI_* environment variables.

Each field's description is also its `--help` text.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnimini.models.catalog import Catalog, embedded_specs, load_models_file, spec_from_flag


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMNIMINI_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on.")
    data_dir: Path = Field(Path("~/.local/share/omnimini"),
                           description="Where downloaded weights and (later) the store live.")
    models_file: Path | None = Field(None, description="YAML or JSON file with further models "
                                     "(id, path or hub, aliases, context_length, price, owned_by, created).")
    models: list[str] = Field(default_factory=list, description="Extra chat models: a local GGUF path "
                              "or hf:owner/repo/file.gguf, optionally =ALIAS. Repeatable.")
    threads: int | None = Field(None, ge=1, description="CPU threads for llama.cpp (default: all cores).")
    context_size: int | None = Field(None, ge=64, description="Cap on every chat model's context "
                                     "length in tokens (default: each model's own).")
    parallel: int = Field(1, ge=1, le=64, description="Sequences each chat model decodes together in one "
                          "batch (continuous batching). More gives more throughput under load; greedy "
                          "output stays independent of load (see load_invariant).")
    queue_size: int = Field(64, ge=1, description="Requests that may wait for a free slot, per chat model; "
                            "beyond that a request gets 429 with Retry-After.")
    prompt_cache: int = Field(8, ge=0, le=64, description="Prompt prefixes of past requests kept in the KV "
                              "cache per chat model, besides the slots (least recently used goes first).")
    load_invariant: bool = Field(True, description="Schedule batches so that greedy output does not depend "
                                 "on what else runs (docs/concurrency.md); off gives the older "
                                 "scheduling, which is no faster now.")
    preload: list[str] = Field(default_factory=lambda: ["omnimini-mini"],
                               description="Models to load at start-up instead of on first request.")
    max_request_bytes: int = Field(16 * 1024 * 1024, ge=1024,
                                   description="Largest request body accepted, in bytes (larger: 413).")
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    # The platform (issue 5): store, API keys, rate limits, Files and Batch API.
    database_url: str | None = Field(None, description="The store: a SQLAlchemy URL, e.g. "
                                     "postgresql+psycopg://user:pw@host/db (default: SQLite in the data dir).")
    auth: bool | None = Field(None, description="Require an API key (Authorization: Bearer) on every /v1 route. "
                              "Default: off on a loopback host; a non-loopback host needs --auth or an "
                              "explicit --no-auth.")
    rate_limit_window: float = Field(60.0, gt=0, description="Length in seconds of the rate-limit window "
                                     "(RPM/TPM count requests and tokens per window; OpenAI's is a minute).")
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1, description="Largest file accepted by /v1/files "
                                "(OpenAI's batch input limit is 200 MB).")

    def catalog(self) -> Catalog:
        specs = embedded_specs()
        if self.models_file:
            specs += load_models_file(self.models_file.expanduser())
        specs += [spec_from_flag(m) for m in self.models]
        return Catalog(specs)

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser()

    @property
    def store_url(self) -> str:
        from omnimini.store import default_url
        return self.database_url or default_url(self.data_path)
