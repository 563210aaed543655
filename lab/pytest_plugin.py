"""pytest support: a session-scoped `lab_host` fixture that boots the lab once and always
shuts it down, also after failures.

Use it from a conftest.py:  `from lab.pytest_plugin import lab_host  # noqa: F401`
(or `pytest_plugins = ["lab.pytest_plugin"]` in the rootdir conftest). Several test
directories may import it: they share one lab per pytest process (controller.shared).

`cluster_host` is the same for the two-controller lab (lab.cluster): one per pytest process,
booted on first use, torn down after its last user. It coexists with `lab_host`: the cluster
lives in its own network namespaces, so neither is shut down for the other.

Outside CI (env CI unset) tests using it are skipped, with the reason, when not root
or when systemd-nspawn is missing. With CI=true those conditions are failures: CI must
run the lab for real.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from . import cluster, controller
from .lifecycle import Session, SharedSession

S = TypeVar("S", bound=Session)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "the lab needs root (systemd-nspawn, cgroups, apt)"
    if shutil.which("systemd-nspawn") is None:
        return "systemd-nspawn is not installed; `sudo python3 -m lab build` installs it (package systemd-container)"
    return None


def require_lab() -> None:
    """Skip (outside CI) or fail (in CI) when the lab cannot run on this machine."""
    reason = unavailable_reason()
    if reason is None:
        return
    if in_ci() and os.geteuid() != 0:
        pytest.fail(f"CI must run the lab, but: {reason}")
    if not in_ci():
        pytest.skip(f"lab unavailable: {reason}")
    # In CI as root a missing systemd-nspawn is installed by the image build.


def _hold(shared: SharedSession[S], running: Callable[[], bool], shutdown: Callable[[], str], down: str) -> Iterator[S]:
    """The process's shared session for one fixture: booted on first use, released after.
    One already up that this pytest run did not start is refused (outside CI: it may be
    somebody's) or, in CI, the leftover of an interrupted run, taken down."""
    require_lab()
    if running() and shared.current is None:
        if not in_ci():
            pytest.fail(f"one is already up that this test run did not start: run `{down}` first")
        shutdown()
    handle = shared.acquire()
    try:
        yield handle
    finally:
        shared.release()


@pytest.fixture(scope="session")
def lab_host() -> Iterator[controller.Lab]:
    """The booted lab (`lab.connection`, `lab.ssh(...)`); shut down at session end."""
    yield from _hold(controller.shared, controller.is_up, controller.shutdown, "python3 -m lab down")


@pytest.fixture(scope="session")
def cluster_host() -> Iterator[cluster.Cluster]:
    """The booted two-controller lab (`cluster.connection`, `cluster.ssh(..., host=)`); torn
    down at session end. Runs beside `lab_host` if that is up too (own namespaces, names)."""
    yield from _hold(cluster.shared, cluster.is_up, cluster.shutdown, "python3 -m lab cluster-down")
