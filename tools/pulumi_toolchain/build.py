"""A toolchain built from Go modules into a temporary directory renamed into place when complete; or a
partial one (GLANCE_PULUMI_ALLOW_MISSING_PLUGINS=1) completed from GLANCE_PULUMI_PLUGIN_DIR."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .cache import read_manifest, write_manifest
from .errors import log
from .gobuild import Go, build_cli
from .language_host import build_language_host, install_language_host, language_host_file, legacy_language_host
from .plugins import find_plugins, install_plugins, verify
from .versions import RECIPE_REVISION


def build_all(
    root: Path, toolchains: Path, key: str, pulumi_version: str, plugins: dict[str, str], allow_missing: bool
) -> Path:
    final = toolchains / key
    work = root / "work" / key
    manifest = read_manifest(final)
    if manifest is not None and (final / "bin" / "pulumi").exists():
        return _complete(final, manifest, pulumi_version, plugins, allow_missing)

    for stale in toolchains.glob(f".tmp-{key}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=toolchains))
    tmp.chmod(0o755)
    (tmp / "bin").mkdir()
    (tmp / "home").mkdir()
    log(
        f"building the Pulumi toolchain {key} (pulumi {pulumi_version}, plugins "
        + ", ".join(f"{n} {v}" for n, v in plugins.items())
        + f"); work dir {work}"
    )
    try:
        return _build_into(tmp, final, work, key, pulumi_version, plugins, allow_missing)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _complete(
    final: Path, manifest: dict[str, Any], pulumi_version: str, plugins: dict[str, str], allow_missing: bool
) -> Path:
    """A partial toolchain from an earlier GLANCE_PULUMI_ALLOW_MISSING_PLUGINS run: retry what is missing."""
    retry = [n for n in manifest.get("missing", []) if n in plugins]
    host = manifest.get("language_host", {}).get("version")
    log(f"completing {final}: missing plugins {', '.join(retry) or 'none'}; language host {host}")
    found, still = find_plugins(retry, plugins, allow_missing, manifest)
    install_plugins(final, found, plugins)
    manifest["missing"] = still
    supplied = language_host_file(pulumi_version)
    if legacy_language_host(manifest) and supplied is not None:
        helpers = manifest["language_host"].get("helpers", [])
        manifest["language_host"] = {
            **install_language_host(supplied, pulumi_version, final / "bin"),
            "helpers": helpers,
        }
    write_manifest(final, manifest)
    verify(final, pulumi_version, plugins, still)
    return final


def _build_into(
    tmp: Path, final: Path, work: Path, key: str, pulumi_version: str, plugins: dict[str, str], allow_missing: bool
) -> Path:
    start = time.monotonic()
    go = Go(work)
    manifest: dict[str, Any] = {
        "key": key,
        "source": "built",
        "pulumi": pulumi_version,
        "plugins": plugins,
        "recipe": RECIPE_REVISION,
    }
    # Plugins first: in strict mode a missing plugin fails the run before the long CLI build.
    found, missing = find_plugins(list(plugins), plugins, allow_missing, manifest)
    manifest["cli"] = build_cli(go, pulumi_version, tmp / "bin")
    manifest["language_host"] = build_language_host(go, pulumi_version, tmp / "bin")
    install_plugins(tmp, found, plugins)
    manifest["missing"] = missing
    verify(tmp, pulumi_version, plugins, missing)
    manifest["build_seconds"] = round(time.monotonic() - start)
    write_manifest(tmp, manifest)
    os.rename(tmp, final)
    shutil.rmtree(work, ignore_errors=True)
    log(
        f"toolchain ready in {manifest['build_seconds']}s: {final}"
        + (f" (MISSING plugins: {', '.join(missing)})" if missing else "")
    )
    return final
