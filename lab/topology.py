"""The two labs as data: nodes (containers booted from the one image) and a network plan.

lab.lifecycle boots, waits for, reaches, inspects and stops any topology; lab.controller and
lab.cluster are its two instances, LAB and CLUSTER:

- LAB: one node on the host's network; every service binds the machine's loopback, so
  one runs per machine and its ports must be free.
- CLUSTER: two nodes, each in its own network namespace on a bridge the cluster creates on
  the host; nothing is routed beyond it (no ip_forward, no firewall changes). The first
  runs every service and HAProxy; the second sshd only (the services masked). Each node
  gets its plan (lab.guest.render.NodePlan) bind-mounted at /etc/lab-cluster, and the
  image's lab-cluster.service renders its config files from it before any service starts.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError
from .guest.render import Balancer, NodePlan
from .paths import (
    CLUSTER_BRIDGE,
    CLUSTER_HOST_ADDRESS,
    CLUSTER_LB_PORT,
    CLUSTER_LB_STATS_PORT,
    CLUSTER_MACHINE_PREFIX,
    CLUSTER_NODES,
    CLUSTER_SUBNET,
    LOOPBACK,
    MACHINE_NAME,
    PORTS,
    cluster_run_dir,
    run_dir,
)

# The image's own hostname, which the single lab's node keeps.
HOSTNAME = "controller"


@dataclass(frozen=True)
class Node:
    """One container: its hostname, the address the host reaches it at, its host-side names."""

    name: str
    address: str
    machine: str  # nspawn's machine name, also its cgroup subtree's
    index: int  # 1-based; the first runs the services
    netns: str | None = None  # its network namespace; None: the host's
    veth: str | None = None  # the host's end of its veth pair

    @property
    def cgroup(self) -> str:
        return self.machine

    @property
    def primary(self) -> bool:
        return self.index == 1


def _run_ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise LabError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def _ip_lines(*args: str) -> list[list[str]]:
    out = subprocess.run(["ip", "-o", "-4", *args, "show"], capture_output=True, text=True, check=True).stdout
    return [line.split() for line in out.splitlines()]


@dataclass(frozen=True)
class HostNetwork:
    """The host's network namespace: the services bind the machine's loopback ports."""

    def preflight(self) -> None:
        busy = busy_ports()
        if busy:
            listed = ", ".join(f"{name} {LOOPBACK}:{port}" for name, port in busy.items())
            raise LabError(f"ports the lab needs are already in use: {listed}")

    def create(self, nodes: tuple[Node, ...]) -> None:
        """Nothing to create."""

    def remove(self, nodes: tuple[Node, ...]) -> list[str]:
        return []

    def leftovers(self, nodes: tuple[Node, ...]) -> dict[str, list[str]]:
        return {}

    def status(self) -> dict[str, object]:
        """Which of the lab's ports answer on the host's loopback."""
        return {"listening": {name: _listening(port) for name, port in PORTS.items()}}


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def busy_ports() -> dict[str, int]:
    """Ports the single lab needs that something already listens on (host networking)."""
    busy = {}
    for name, port in PORTS.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # SO_REUSEADDR: ignore TIME_WAIT leftovers of a previous lab, as its daemons do.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                busy[name] = port
    return busy


@dataclass(frozen=True)
class BridgeNetwork:
    """A bridge on the host (its address `host_address`) and a namespace per node, joined to
    it by a veth pair. The subnet must not clash with the host's own: preflight checks."""

    bridge: str
    subnet: str
    host_address: str

    @property
    def prefix_length(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    def clashes(self) -> list[str]:
        """Host addresses or routes, not the bridge's own, that overlap the subnet."""
        subnet = ipaddress.ip_network(self.subnet)
        found = [
            f"{fields[3]} on {fields[1]}"
            for fields in _ip_lines("addr")
            if fields[1] != self.bridge and ipaddress.ip_interface(fields[3]).network.overlaps(subnet)
        ]
        for fields in _ip_lines("route"):
            line = " ".join(fields)
            if fields[0] == "default" or f"dev {self.bridge}" in line:
                continue
            if ipaddress.ip_network(fields[0], strict=False).overlaps(subnet):
                found.append(f"route {line}")
        return found

    def preflight(self) -> None:
        clashes = self.clashes()
        if clashes:
            raise LabError(f"the cluster's subnet {self.subnet} clashes with the host's: {'; '.join(clashes)}")

    def create(self, nodes: tuple[Node, ...]) -> None:
        _run_ip("link", "add", self.bridge, "type", "bridge")
        _run_ip("addr", "add", f"{self.host_address}/{self.prefix_length}", "dev", self.bridge)
        _run_ip("link", "set", self.bridge, "up")
        for node in nodes:
            assert node.netns and node.veth
            _run_ip("netns", "add", node.netns)
            _run_ip("link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
            _run_ip("link", "set", node.veth, "master", self.bridge, "up")
            _run_ip("-n", node.netns, "addr", "add", f"{node.address}/{self.prefix_length}", "dev", "eth0")
            _run_ip("-n", node.netns, "link", "set", "eth0", "up")
            _run_ip("-n", node.netns, "link", "set", "lo", "up")

    def remove(self, nodes: tuple[Node, ...]) -> list[str]:
        """Delete what exists of it; returns what was there. Deleting one end of a veth pair
        deletes the other; a namespace goes once no process is left in it."""
        removed = []
        for node in nodes:
            if node.veth and _link_exists(node.veth):
                _run_ip("link", "del", node.veth)
                removed.append(node.veth)
            if node.netns and _netns_exists(node.netns):
                _run_ip("netns", "del", node.netns)
                removed.append(f"netns {node.netns}")
        if _link_exists(self.bridge):
            _run_ip("link", "del", self.bridge)
            removed.append(self.bridge)
        return removed

    def leftovers(self, nodes: tuple[Node, ...]) -> dict[str, list[str]]:
        netns = [node.netns for node in nodes if node.netns and _netns_exists(node.netns)]
        links = [name for name in (self.bridge, *(node.veth or "" for node in nodes)) if name and _link_exists(name)]
        return {key: values for key, values in (("netns", netns), ("links", links)) if values}

    def status(self) -> dict[str, object]:
        return {}


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


@dataclass(frozen=True)
class Topology:
    """A lab: its nodes, network plan, run directory and (optionally) load balancer."""

    name: str  # "lab" or "cluster", in messages
    run_root: Callable[[], Path]  # its run dir (paths.run_dir or paths.cluster_run_dir)
    nodes: tuple[Node, ...]
    network: HostNetwork | BridgeNetwork
    up_command: str
    down_command: str
    boot_timeout: float
    balancer_ports: tuple[int, int] | None = None  # HAProxy's frontend and stats, on the first node

    @property
    def primary(self) -> Node:
        return self.nodes[0]

    @property
    def service_address(self) -> str:
        """Where every lab service answers: the first node."""
        return self.primary.address

    @property
    def plans_nodes(self) -> bool:
        """Whether each node's config is rendered at boot from its own plan (the cluster);
        otherwise the image's, rendered at build for the single lab's node, serves."""
        return isinstance(self.network, BridgeNetwork)

    @property
    def keystone_url(self) -> str:
        return f"http://{self.service_address}:{PORTS['keystone']}/v3"

    @property
    def swift_url(self) -> str:
        return f"http://{self.service_address}:{PORTS['swift']}"

    @property
    def balancer_urls(self) -> tuple[str, str] | None:
        """HAProxy's frontend and stats page, if this lab has one."""
        if self.balancer_ports is None:
            return None
        port, stats = self.balancer_ports
        return f"http://{self.service_address}:{port}", f"http://{self.service_address}:{stats}/"

    @property
    def run_dir(self) -> Path:
        return self.run_root()

    @property
    def lock_name(self) -> str:
        """Serialises its up and down between processes (a second `up` waits, then sees the first)."""
        return f"{self.run_dir.name}.lock"

    def node_plan(self, node: Node) -> NodePlan:
        """What `node`'s config files are rendered from."""
        if not self.plans_nodes:
            return NodePlan(HOSTNAME, None, None, (("127.0.1.1", node.name),), PORTS)
        assert isinstance(self.network, BridgeNetwork)
        balancer = None
        if node.primary and self.balancer_ports is not None:
            servers = tuple((other.name, f"{other.address}:{PORTS['glance']}") for other in self.nodes)
            balancer = Balancer(node.address, *self.balancer_ports, servers)
        hosts = tuple((other.address, other.name) for other in self.nodes)
        return NodePlan(node.name, node.address, self.network.subnet, hosts, PORTS, balancer)


LAB = Topology(
    name="lab",
    run_root=run_dir,
    nodes=(Node(HOSTNAME, LOOPBACK, MACHINE_NAME, 1),),
    network=HostNetwork(),
    up_command="python3 -m lab up",
    down_command="python3 -m lab down",
    boot_timeout=240.0,  # generous: 2 cores shared with other builds
)

CLUSTER = Topology(
    name="cluster",
    run_root=cluster_run_dir,
    nodes=tuple(
        Node(name, address, f"{CLUSTER_MACHINE_PREFIX}-{name}", i, f"glpl-{name}", f"glpl-veth{i}")  # <= 15 bytes
        for i, (name, address) in enumerate(CLUSTER_NODES, 1)
    ),
    network=BridgeNetwork(CLUSTER_BRIDGE, CLUSTER_SUBNET, CLUSTER_HOST_ADDRESS),
    up_command="python3 -m lab cluster-up",
    down_command="python3 -m lab cluster-down",
    boot_timeout=300.0,  # two containers on 2 shared cores
    balancer_ports=(CLUSTER_LB_PORT, CLUSTER_LB_STATS_PORT),
)
