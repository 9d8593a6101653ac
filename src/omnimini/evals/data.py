"""Finding an eval's data: a local directory, or the canonical URL (downloaded once into a cache).

With `--data-dir D` the files must be under D (tests use ../shared/evaldata); nothing is
downloaded. Without it, a cached copy is used, else the canonical URL is fetched. A data set that
cannot be found is a clear error naming where to get it; a loader never falls back to other data.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

DOWNLOAD_TIMEOUT_S = 60.0


class DataNotFound(Exception):
    """A data set is neither in the given directory nor downloadable."""


class BadData(Exception):
    """A data file that cannot be read as the set it should hold; the message names file and line."""


def find_local(data_dir: Path, candidates: list[str]) -> Path | None:
    for rel in candidates:
        p = data_dir / rel
        if p.exists():
            return p
    return None


def fetch(url: str, cache_dir: Path, name: str) -> Path:
    """The cached copy of `url` under cache_dir/name, downloading it first if needed (atomic write)."""
    target = cache_dir / name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".part{os.getpid()}")
    try:
        with httpx.stream("GET", url, timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True) as r:
            r.raise_for_status()
            with open(tmp, "wb") as f:
                for chunk in r.iter_bytes():
                    f.write(chunk)
    except httpx.HTTPError as e:
        tmp.unlink(missing_ok=True)
        reason = f"HTTP {e.response.status_code}" if isinstance(e, httpx.HTTPStatusError) else str(e)
        raise DataNotFound(f"could not download {url} ({reason})") from e
    os.replace(tmp, target)
    return target


def locate(eval_name: str, data_dir: Path | None, cache_dir: Path, local: list[str],
           downloads: dict[str, str], how_to_get: str) -> dict[str, Path] | Path:
    """A local file (the first of `local` under data_dir) or the downloaded files {name: path}.

    `downloads` maps a cache file name to its canonical URL.
    """
    if data_dir is not None:
        found = find_local(data_dir, local)
        if found is None:
            raise DataNotFound(f"{eval_name}: no data under {data_dir} (looked for {', '.join(local)}). "
                               f"{how_to_get}")
        return found
    try:
        return {name: fetch(url, cache_dir / eval_name, name) for name, url in downloads.items()}
    except DataNotFound as e:
        raise DataNotFound(f"{eval_name}: {e}. {how_to_get} Offline, pass --data-dir with a local "
                           f"copy (layout: {', '.join(local)}).") from e
