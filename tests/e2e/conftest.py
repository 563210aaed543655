"""End-to-end: the real Pulumi engine deploys the lab stacks onto the lab controller."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from lab.pytest_plugin import cluster_host, in_ci, lab_host  # noqa: F401 - the session's lab controllers
from lab.stacks import PulumiCli, scratch_project

REPO = Path(__file__).resolve().parents[2]
TIMINGS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("end-to-end phase timings (seconds)")
        for phase, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{phase:<40} {seconds:7.1f}")


class Timer:
    def __init__(self, phase: str) -> None:
        self.phase = phase

    def __enter__(self) -> Timer:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        TIMINGS[self.phase] = time.monotonic() - self.start


def toolchain_dir() -> Path:
    """The toolchain scripts/setup installed (--check: never builds here)."""
    result = subprocess.run(
        [REPO / "scripts" / "pulumi-toolchain", "--check"], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        reason = f"the Pulumi toolchain is not installed (run scripts/setup): {result.stderr[-1000:]}"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    return Path(result.stdout.strip())


def require_plugins() -> None:
    """The engine can only deploy the program with every resource plugin installed."""
    missing = json.loads((toolchain_dir() / "manifest.json").read_text()).get("missing", [])
    if missing:
        pytest.xfail(
            f"the official resource plugins {', '.join(missing)} are not in the toolchain: this machine cannot "
            "download them; install them with GLANCE_PULUMI_PLUGIN_DIR (see the README)"
        )


def require_policy_host() -> None:
    """Policy packs start through the language host, which must be the engine's own release."""
    manifest = json.loads((toolchain_dir() / "manifest.json").read_text())
    host, engine = manifest.get("language_host", {}).get("version"), manifest.get("pulumi")
    if host != engine:
        pytest.xfail(
            f"the toolchain's Python language host is {host}, older than the engine ({engine}): it cannot start "
            f"policy packs; install pulumi-language-python-v{engine} with GLANCE_PULUMI_PLUGIN_DIR (see the README)"
        )


@pytest.fixture(scope="session")
def pulumi_cli(tmp_path_factory: pytest.TempPathFactory) -> PulumiCli:
    """The real CLI on a copy of the project, with its own file backend and passphrase."""
    toolchain_dir()
    return scratch_project(tmp_path_factory.mktemp("project"), tmp_path_factory.mktemp("state"))
