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
                          "batch (continuous batching). More gives more throughput under load; 1 keeps "
                          "greedy output independent of load.")
    preload: list[str] = Field(default_factory=lambda: ["omnimini-mini"],
                               description="Models to load at start-up instead of on first request.")
    max_request_bytes: int = Field(16 * 1024 * 1024, ge=1024,
                                   description="Largest request body accepted, in bytes (larger: 413).")
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")

    def catalog(self) -> Catalog:
        specs = embedded_specs()
        if self.models_file:
            specs += load_models_file(self.models_file.expanduser())
        specs += [spec_from_flag(m) for m in self.models]
        return Catalog(specs)

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser()
