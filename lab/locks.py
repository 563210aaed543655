"""Machine-wide exclusive locks in the lab cache, shared by every process using the lab."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from .paths import cache_root


@contextmanager
def exclusive(name: str) -> Iterator[None]:
    """Hold an exclusive flock on cache_root()/name for the block; other holders wait."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
