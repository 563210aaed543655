"""The cache: one directory per key (toolchain/KEY) with its manifest.json, built under one lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import log
from .language_host import language_host_file, legacy_language_host
from .plugins import find_plugin_file


def read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    tmp = directory / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, directory / "manifest.json")


def usable(directory: Path, manifest: dict[str, Any] | None, allow_missing: bool) -> bool:
    if manifest is None or not (directory / "bin" / "pulumi").exists():
        return False
    missing = manifest.get("missing") or []
    if any(find_plugin_file(name, manifest["plugins"][name]) for name in missing):
        return False  # GLANCE_PULUMI_PLUGIN_DIR now has some of them: install those
    if legacy_language_host(manifest) and language_host_file(manifest["pulumi"]):
        return False  # ... or the official language host
    return allow_missing or not missing


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another build to finish (lock {lock_path})")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
