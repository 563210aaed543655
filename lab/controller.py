"""The single lab: one controller on the host's network (lab.topology.LAB); the Python API
behind `python3 -m lab up/down/status`.

    from lab.controller import Lab
    with Lab() as lab:                       # builds the image if needed, boots, waits
        lab.connection["keystone"]["auth_url"]
        lab.ssh("systemctl is-active mariadb").stdout
    # shut down here, also after an exception

Lower level: ensure_image(), boot(), shutdown(), status(), ssh(), read_connection(). One
lab runs per machine at a time (it owns fixed loopback ports); its state lives in
paths.run_dir() so that `up` and `down` can be separate processes. The lifecycle itself
(lab.lifecycle) is the cluster's too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from . import lifecycle
from .errors import LabError
from .image import ensure_image
from .lifecycle import STOP_TIMEOUT, Log, Session, SharedSession
from .session import keystone_token
from .topology import LAB, busy_ports

__all__ = [
    "BOOT_TIMEOUT",
    "STOP_TIMEOUT",
    "Lab",
    "LabError",
    "boot",
    "busy_ports",
    "connection_path",
    "ensure_image",
    "is_up",
    "keystone_token",
    "read_connection",
    "shared",
    "shutdown",
    "ssh",
    "ssh_argv",
    "status",
]

BOOT_TIMEOUT = LAB.boot_timeout
_log = lifecycle.stderr_log(LAB)


def boot(log: Log = _log, timeout: float = BOOT_TIMEOUT) -> dict[str, Any]:
    """Boot the cached image (building it if needed) and wait until it is usable; returns
    the connection settings, also written to connection.json (0600)."""
    return lifecycle.boot(LAB, log, timeout)


def shutdown(log: Log = _log, timeout: float = STOP_TIMEOUT) -> str:
    """Stop the lab if one is up; safe to call when none is. Returns what happened."""
    return lifecycle.shutdown(LAB, log, timeout)


def status() -> dict[str, Any]:
    return lifecycle.status(LAB)


def is_up() -> bool:
    return lifecycle.is_up(LAB)


def connection_path() -> Path:
    return lifecycle.connection_path(LAB)


def read_connection() -> dict[str, Any]:
    return lifecycle.read_connection(LAB)


def ssh_argv(command: str, key: Path | None = None) -> list[str]:
    """argv for running `command` as root in the lab over ssh, host key pinned."""
    return lifecycle.ssh_argv(LAB, command, key=key)


def ssh(
    command: str, input: str | None = None, check: bool = True, timeout: float = 600, host: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a shell command in the running lab as root; pass secrets via `input`."""
    return lifecycle.ssh(LAB, command, input=input, check=check, timeout=timeout, host=host)


class Lab(Session):
    """`with Lab() as lab:` boots the lab and always shuts it down afterwards."""

    def __init__(self, log: Log = _log, timeout: float = BOOT_TIMEOUT) -> None:
        super().__init__(LAB, log, timeout)


# One lab per process, shared by several users (e.g. pytest fixtures).
shared: SharedSession[Lab] = SharedSession(Lab)
