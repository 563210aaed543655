"""The command line: `scripts/pulumi-toolchain [--check]` (see the package docstring)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .build import build_all
from .cache import locked, read_manifest, usable
from .errors import BuildError, log
from .system import make_system_dir, system_pulumi_matches
from .versions import cache_key, read_versions, repo_root


def main(argv: list[str]) -> int:
    check_only = "--check" in argv
    unknown = [a for a in argv if a != "--check"]
    if unknown:
        print("usage: pulumi-toolchain [--check]", file=sys.stderr)
        return 2
    requirements = Path(os.environ.get("GLANCE_PULUMI_REQUIREMENTS", repo_root() / "requirements.txt"))
    allow_missing = os.environ.get("GLANCE_PULUMI_ALLOW_MISSING_PLUGINS") == "1"
    root = Path(os.environ.get("GLANCE_PULUMI_CACHE") or "/var/cache/glance-pulumi")
    try:
        pulumi_version, plugins = read_versions(requirements)
        key = cache_key(pulumi_version, plugins)
        toolchains = root / "toolchain"
        final = toolchains / key
        if usable(final, read_manifest(final), allow_missing):
            print(final)
            return 0
        system = system_pulumi_matches(pulumi_version, plugins)
        try:
            toolchains.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BuildError(
                "toolchain", "create the cache directory", f"{toolchains}: {exc} (set GLANCE_PULUMI_CACHE)"
            ) from exc
        if check_only and not system:
            partial = read_manifest(final)
            if partial and partial.get("missing"):
                log(
                    f"{final} lacks plugins {', '.join(partial['missing'])} "
                    "(set GLANCE_PULUMI_ALLOW_MISSING_PLUGINS=1 to use it)"
                )
                return 3
            log(f"no usable toolchain for {key} under {toolchains} (run scripts/pulumi-toolchain to build it)")
            return 3
        if system:
            with locked(toolchains / ".lock"):
                print(make_system_dir(toolchains, key, system, pulumi_version, plugins))
            return 0
        with locked(toolchains / ".lock"):
            if usable(final, read_manifest(final), allow_missing):
                print(final)
                return 0
            built = build_all(root, toolchains, key, pulumi_version, plugins, allow_missing)
        manifest = read_manifest(built) or {}
        if manifest.get("missing") and not allow_missing:
            raise BuildError(
                ", ".join(f"pulumi-resource-{n}" for n in manifest["missing"]), "build", "plugins still missing"
            )
        print(built)
        return 0
    except BuildError as err:
        log(f"FAILED: {err.binary}: step '{err.step}':\n{err.detail}")
        return 1
    except (OSError, subprocess.SubprocessError) as err:
        log(f"FAILED: {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
