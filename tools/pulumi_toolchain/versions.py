"""The pinned versions (from requirements.txt) and the cache key they give."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
from pathlib import Path

from .errors import BuildError

# Bump when the build recipe changes: it is part of the cache key. (Not bumped for the fix that stopped
# a host built from Go modules overwriting the operator's official one: a toolchain built before it
# holds a host of the same release, or the legacy one, which the next run replaces with the official.)
RECIPE_REVISION = 3

# The Python language host is its own Go module (no tags; a pseudo-version of the pulumi release
# commit). When the module proxy does not serve it, the last pulumi sdk/v3 release that still carried
# the host inside the sdk module *and* is served is used instead (see language_host.build_language_host).
LEGACY_LANGUAGE_HOST_SDK = "v3.68.0"

# pulumi-* packages in requirements.txt that are not resource plugins: the CrossGuard SDK
# (its wheel's pulumi-plugin.json says "resource": false).
NOT_PLUGINS = {"policy"}


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def read_versions(requirements: Path) -> tuple[str, dict[str, str]]:
    pulumi_version = ""
    plugins: dict[str, str] = {}
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        m = re.fullmatch(r"pulumi(?:-([A-Za-z0-9_.-]+))?\s*==\s*([0-9][0-9A-Za-z.+-]*)", line)
        if not m:
            continue
        name, version = m.group(1), m.group(2)
        if name is None:
            pulumi_version = version
        elif name.lower() not in NOT_PLUGINS:
            plugins[name.lower().replace("_", "-")] = version
    if not pulumi_version:
        raise BuildError("pulumi", "read requirements.txt", f"no pinned 'pulumi==X' line in {requirements}")
    return pulumi_version, dict(sorted(plugins.items()))


def goarch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def cache_key(pulumi_version: str, plugins: dict[str, str]) -> str:
    material = json.dumps(
        {
            "recipe": RECIPE_REVISION,
            "pulumi": pulumi_version,
            "plugins": plugins,
            "legacy_language_host": LEGACY_LANGUAGE_HOST_SDK,
            "platform": f"{sys.platform}-{goarch()}",
        },
        sort_keys=True,
    )
    return f"pulumi-{pulumi_version}-r{RECIPE_REVISION}-{hashlib.sha256(material.encode()).hexdigest()[:12]}"
