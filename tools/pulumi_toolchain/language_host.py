"""The Python language host: the operator's official one (GLANCE_PULUMI_PLUGIN_DIR), else built from its Go
module, else, when the proxy does not serve that, the legacy host from an older sdk behind a shim."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .errors import BuildError, log
from .gobuild import PULUMI_PKG, PULUMI_SDK, VERSION_VAR, Go, pseudo_from_info, remote_replaces, timed
from .versions import LEGACY_LANGUAGE_HOST_SDK

BINARY = "pulumi-language-python"
LANGUAGE_HOST_MODULE = "github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3"
LEGACY_LANGUAGE_HOST_PKG = "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"

LEGACY_SHIM = """#!/bin/sh
# Written by glance-pulumi's scripts/pulumi-toolchain. The Python language host module of this pulumi
# release is not served by the Go module proxy, so the host from pulumi sdk {legacy} runs instead.
# Engines since then no longer pass Pulumi.yaml's runtime options to the host as flags; this shim
# reads runtime.options.virtualenv from the Pulumi.yaml in the directory the engine starts it in
# (the project directory) and passes -root/-virtualenv the way that host expects them.
here=$(dirname "$(readlink -f "$0")")
root=$PWD
venv=
for f in "$root/Pulumi.yaml" "$root/Pulumi.yml"; do
    if [ -f "$f" ]; then
        q="[\\"']\\{{0,1\\}}"
        venv=$(sed -n "s/.*virtualenv$q:[[:space:]]*$q\\([^\\"',}}[:space:]]*\\).*/\\1/p" "$f" | head -n 1)
        break
    fi
done
if [ -n "$venv" ]; then
    exec "$here/pulumi-language-python-{legacy}" -root="$root" -virtualenv="$venv" "$@"
fi
exec "$here/pulumi-language-python-{legacy}" -root="$root" "$@"
"""


def language_host_file(version: str) -> Path | None:
    """The official host of this release in GLANCE_PULUMI_PLUGIN_DIR (the engine's own version)."""
    directory = os.environ.get("GLANCE_PULUMI_PLUGIN_DIR")
    path = Path(directory) / f"pulumi-language-python-v{version}" if directory else None
    return path if path is not None and path.is_file() else None


def install_language_host(path: Path, version: str, bindir: Path) -> dict[str, Any]:
    """Put the official host in place of a legacy one (and its shim)."""
    for old in bindir.glob("pulumi-language-python-v*"):
        old.unlink()
    target = bindir / BINARY
    tmp = bindir / ".pulumi-language-python.tmp"
    shutil.copyfile(path, tmp)
    tmp.chmod(0o755)
    os.replace(tmp, target)
    log(f"pulumi-language-python: using the official {path}")
    return {"source": str(path), "version": version}


def legacy_language_host(manifest: dict[str, Any]) -> bool:
    """A host older than the engine: it cannot start policy packs (the engine's RunPlugin changed)."""
    return bool(manifest.get("language_host", {}).get("version") != manifest.get("pulumi"))


def build_language_host(go: Go, version: str, bindir: Path) -> dict[str, Any]:
    """The host of a new toolchain, and the helper scripts of the sdk module beside it.

    An operator-supplied official host is installed and nothing is built: a host built afterwards
    would overwrite it."""
    with timed(BINARY):
        sdk_info = go.download(BINARY, PULUMI_SDK, f"v{version}")
        supplied = language_host_file(version)
        result: dict[str, Any]
        if supplied is not None:
            result = install_language_host(supplied, version, bindir)
        else:
            pkg_info = go.download(BINARY, PULUMI_PKG, f"v{version}")
            try:
                result = _build_host_module(go, version, pkg_info, bindir)
            except BuildError as err:
                result = _build_legacy_host(go, version, bindir, err)
        result["helpers"] = _install_helpers(Path(sdk_info["Dir"]), version, bindir)
    return result


def _build_host_module(go: Go, version: str, pkg_info: dict[str, Any], bindir: Path) -> dict[str, Any]:
    pseudo = pseudo_from_info(pkg_info.get("Info", ""), 3)
    if pseudo is None:
        raise BuildError(BINARY, "derive pseudo-version", f"no commit in the proxy's info for {PULUMI_PKG}@v{version}")
    host_info = go.download(BINARY, LANGUAGE_HOST_MODULE, pseudo)
    go.build_in_wrapper(
        BINARY,
        "language-python",
        {LANGUAGE_HOST_MODULE: pseudo, PULUMI_PKG: f"v{version}", PULUMI_SDK: f"v{version}"},
        remote_replaces(host_info["GoMod"]),
        get=f"{LANGUAGE_HOST_MODULE}@{pseudo}",
        package=LANGUAGE_HOST_MODULE,
        output=bindir / BINARY,
        ldflags=f"-X {VERSION_VAR}=v{version}",
    )
    return {"source": f"{LANGUAGE_HOST_MODULE}@{pseudo}", "version": version}


def _build_legacy_host(go: Go, version: str, bindir: Path, err: BuildError) -> dict[str, Any]:
    legacy = LEGACY_LANGUAGE_HOST_SDK
    log(
        f"{BINARY}: the host module for v{version} cannot be had ({err.step}); "
        f"building the host from {PULUMI_SDK}@{legacy} instead"
    )
    go.download(BINARY, PULUMI_SDK, legacy)
    go.build_in_wrapper(
        BINARY,
        "language-python-legacy",
        {PULUMI_SDK: legacy},
        [],
        get=f"{LEGACY_LANGUAGE_HOST_PKG}@{legacy}",
        package=LEGACY_LANGUAGE_HOST_PKG,
        output=bindir / f"{BINARY}-{legacy}",
        ldflags=f"-X {VERSION_VAR}={legacy}",
    )
    shim = bindir / BINARY
    shim.write_text(LEGACY_SHIM.format(legacy=legacy))
    shim.chmod(0o755)
    return {
        "source": f"{LEGACY_LANGUAGE_HOST_PKG}@{legacy}",
        "version": legacy.lstrip("v"),
        "fallback_reason": str(err),
    }


def _install_helpers(sdk_dir: Path, version: str, bindir: Path) -> list[str]:
    """Helpers that ship as scripts in the sdk module at the pinned version."""
    helpers = [sdk_dir / "python" / "cmd" / "pulumi-language-python-exec"]
    dist = sdk_dir / "python" / "dist"
    if dist.is_dir():
        helpers += [p for p in sorted(dist.iterdir()) if p.is_file() and not p.name.endswith(".cmd")]
    for helper in helpers:
        if not helper.is_file():
            raise BuildError(BINARY, "copy helpers", f"{helper} is missing from {PULUMI_SDK}@v{version}")
        shutil.copyfile(helper, bindir / helper.name)
        (bindir / helper.name).chmod(0o755)
    return [h.name for h in helpers]
