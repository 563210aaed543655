"""Two lab controllers on their own network, for Glance on two API hosts behind HAProxy
(lab.topology.CLUSTER); the Python API behind `python3 -m lab cluster-up/down/status`.

    from lab.cluster import Cluster
    with Cluster() as cluster:                  # builds the image if needed, boots both, waits
        cluster.connection["load_balancer"]["url"]           # http://10.77.0.11:9200
        cluster.ssh("hostname", host="10.77.0.12").stdout    # controller2
    # both stopped, their network removed, also after an exception

The first controller (10.77.0.11) keeps every service of the single lab and runs HAProxy,
its frontend on :9200 in front of Glance's :9292 on both; the second (10.77.0.12) runs sshd
and systemd's basics only. The cluster uses its own machine, cgroup, namespace and run-dir
names and no host port, so it runs beside the single lab or without it. One per machine.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from . import lifecycle
from .errors import LabError
from .guest.render import render, services
from .lifecycle import STOP_TIMEOUT, Log, Session, SharedSession, masked_units
from .topology import CLUSTER, Node

__all__ = [
    "BOOT_TIMEOUT",
    "NODES",
    "STOP_TIMEOUT",
    "Cluster",
    "LabError",
    "Node",
    "boot",
    "connection_path",
    "haproxy_config",
    "is_up",
    "known_hosts_path",
    "leftovers",
    "masked_units",
    "node_for",
    "read_connection",
    "shared",
    "shutdown",
    "ssh",
    "ssh_argv",
    "status",
]

BOOT_TIMEOUT = CLUSTER.boot_timeout
NODES = CLUSTER.nodes
_log = lifecycle.stderr_log(CLUSTER)


def boot(log: Log = _log, timeout: float = BOOT_TIMEOUT) -> dict[str, Any]:
    """Create the network, boot both controllers, wait until everything a deployment uses
    answers at the cluster address; returns the connection settings (connection.json)."""
    return lifecycle.boot(CLUSTER, log, timeout)


def shutdown(log: Log = _log, timeout: float = STOP_TIMEOUT) -> str:
    """Stop the cluster and remove its network, cgroups and run dir; safe when none is up."""
    return lifecycle.shutdown(CLUSTER, log, timeout)


def status() -> dict[str, Any]:
    return lifecycle.status(CLUSTER)


def is_up() -> bool:
    return lifecycle.is_up(CLUSTER)


def leftovers() -> dict[str, list[str]]:
    return lifecycle.leftovers(CLUSTER)


def connection_path() -> Path:
    return lifecycle.connection_path(CLUSTER)


def known_hosts_path() -> Path:
    return lifecycle.known_hosts_path(CLUSTER)


def read_connection() -> dict[str, Any]:
    return lifecycle.read_connection(CLUSTER)


def node_for(host: str | None) -> Node:
    return lifecycle.node_for(CLUSTER, host)


def ssh_argv(command: str, host: str | None = None, key: Path | None = None) -> list[str]:
    return lifecycle.ssh_argv(CLUSTER, command, host, key)


def ssh(
    command: str, input: str | None = None, check: bool = True, timeout: float = 600, host: str | None = None
) -> subprocess.CompletedProcess[str]:
    return lifecycle.ssh(CLUSTER, command, input=input, check=check, timeout=timeout, host=host)


def haproxy_config() -> str:
    """HAProxy's config on the first controller (lab/templates/haproxy/haproxy.cfg)."""
    plan = CLUSTER.node_plan(NODES[0])
    (template,) = services(plan)["haproxy"]
    return render(template, plan)


class Cluster(Session):
    """`with Cluster() as cluster:` boots both controllers and always tears everything down
    afterwards: containers, namespaces, veths, bridge, cgroups."""

    def __init__(self, log: Log = _log, timeout: float = BOOT_TIMEOUT) -> None:
        super().__init__(CLUSTER, log, timeout)


# One cluster per process, shared by several users (e.g. pytest fixtures).
shared: SharedSession[Cluster] = SharedSession(Cluster)
