"""The official resource plugins: found in GLANCE_PULUMI_PLUGIN_DIR, installed with `pulumi plugin install`,
and checked with `pulumi plugin ls` (never built: the module proxy does not serve them)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from .errors import BuildError, log
from .versions import goarch


def plugin_file_names(name: str, version: str) -> tuple[str, str]:
    """The release asset's name, and a bare binary's."""
    return (f"pulumi-resource-{name}-v{version}-linux-{goarch()}.tar.gz", f"pulumi-resource-{name}-v{version}")


def find_plugin_file(name: str, version: str) -> Path | None:
    directory = os.environ.get("GLANCE_PULUMI_PLUGIN_DIR")
    if not directory:
        return None
    for candidate in plugin_file_names(name, version):
        path = Path(directory) / candidate
        if path.is_file():
            return path
    return None


def plugin_file(name: str, version: str) -> Path:
    """The official plugin binary (or release archive) for `name` at `version`."""
    binary = f"pulumi-resource-{name}"
    directory = os.environ.get("GLANCE_PULUMI_PLUGIN_DIR")
    names = plugin_file_names(name, version)
    if not directory:
        raise BuildError(
            binary,
            "find the official plugin",
            f"GLANCE_PULUMI_PLUGIN_DIR is not set (a directory holding {' or '.join(names)})",
        )
    found = find_plugin_file(name, version)
    if found is None:
        raise BuildError(binary, "find the official plugin", f"neither {' nor '.join(names)} is in {directory}")
    return found


def find_plugins(
    names: list[str], plugins: dict[str, str], allow_missing: bool, manifest: dict[str, Any]
) -> tuple[dict[str, Path], list[str]]:
    """Find each official plugin; in strict mode the first one missing raises."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in names:
        try:
            found[name] = plugin_file(name, plugins[name])
            manifest.setdefault("plugin_sources", {})[name] = {"source": str(found[name])}
        except BuildError as err:
            if not allow_missing:
                raise
            log(f"ERROR (continuing, GLANCE_PULUMI_ALLOW_MISSING_PLUGINS=1): {err}")
            missing.append(name)
    return found, missing


def toolchain_env(directory: Path) -> dict[str, str]:
    return dict(
        os.environ,
        PULUMI_HOME=str(directory / "home"),
        PATH=f"{directory / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_IGNORE_AMBIENT_PLUGINS="true",
    )


def plugin_versions(pulumi: str, env: dict[str, str]) -> dict[str, set[str]]:
    out = subprocess.run(
        [pulumi, "plugin", "ls", "--json"], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    found: dict[str, set[str]] = {}
    for entry in json.loads(out or "[]") or []:
        if entry.get("kind") == "resource":
            found.setdefault(entry.get("name", ""), set()).add(str(entry.get("version", "")).lstrip("v"))
    return found


def install_plugin(directory: Path, name: str, version: str, path: Path) -> None:
    binary = f"pulumi-resource-{name}"
    proc = subprocess.run(
        [str(directory / "bin" / "pulumi"), "plugin", "install", "resource", name, version, "--file", str(path)],
        env=toolchain_env(directory),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise BuildError(binary, "pulumi plugin install", (proc.stdout + proc.stderr).strip())


def install_plugins(directory: Path, built: dict[str, Path], plugins: dict[str, str]) -> None:
    for name, path in built.items():
        install_plugin(directory, name, plugins[name], path)


def verify(directory: Path, pulumi_version: str, plugins: dict[str, str], missing: list[str]) -> None:
    env = toolchain_env(directory)
    out = subprocess.run(
        [str(directory / "bin" / "pulumi"), "version"], env=env, capture_output=True, text=True, timeout=60
    )
    if out.stdout.strip() != f"v{pulumi_version}":
        raise BuildError(
            "pulumi", "verify version", f"'pulumi version' printed {out.stdout.strip()!r}{out.stderr.strip()}"
        )
    have = plugin_versions(str(directory / "bin" / "pulumi"), env)
    for name, version in plugins.items():
        if name not in missing and version not in have.get(name, set()):
            raise BuildError(
                f"pulumi-resource-{name}",
                "verify plugin ls",
                f"{name} {version} not listed (have {sorted(have.get(name, set()))})",
            )
