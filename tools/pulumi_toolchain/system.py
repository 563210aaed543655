"""A pulumi already on PATH, of the pinned version and with every plugin (an operator machine with internet)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .cache import read_manifest, write_manifest
from .plugins import plugin_versions


def system_pulumi_matches(pulumi_version: str, plugins: dict[str, str]) -> str | None:
    if os.environ.get("GLANCE_PULUMI_NO_SYSTEM") == "1":
        return None
    found = shutil.which("pulumi")
    if not found:
        return None
    env = dict(os.environ, PULUMI_SKIP_UPDATE_CHECK="true")
    try:
        version = subprocess.run(
            [found, "version"], env=env, capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        if version.lstrip("v") != pulumi_version:
            return None
        have = plugin_versions(found, env)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if all(version in have.get(name, set()) for name, version in plugins.items()):
        return os.path.realpath(found)
    return None


def make_system_dir(toolchains: Path, key: str, pulumi_path: str, pulumi_version: str, plugins: dict[str, str]) -> Path:
    target = toolchains / f"system-{key}"
    home = os.environ.get("PULUMI_HOME") or str(Path.home() / ".pulumi")
    manifest = read_manifest(target)
    if (
        manifest is not None
        and manifest.get("pulumi_path") == pulumi_path
        and os.path.realpath(target / "home") == os.path.realpath(home)
    ):
        return target
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-system-{key}-", dir=toolchains))
    tmp.chmod(0o755)
    (tmp / "bin").mkdir()
    (tmp / "bin" / "pulumi").symlink_to(pulumi_path)
    (tmp / "home").symlink_to(home)
    write_manifest(
        tmp,
        {
            "key": key,
            "source": "system",
            "pulumi": pulumi_version,
            "pulumi_path": pulumi_path,
            "plugins": plugins,
            "missing": [],
        },
    )
    if target.exists():
        shutil.rmtree(target)
    os.rename(tmp, target)
    return target
