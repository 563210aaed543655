"""Two lab controllers on their own network, for Glance on two API hosts behind HAProxy.

    from lab.cluster import Cluster
    with Cluster() as cluster:                  # builds the image if needed, boots both, waits
        cluster.connection["load_balancer"]["url"]           # http://10.77.0.11:9200
        cluster.ssh("hostname", host="10.77.0.12").stdout    # controller2
    # both stopped, their network removed, also after an exception

Topology (paths.CLUSTER_*): a Linux bridge on the host (glpl-br0, 10.77.0.1/24) and one
network namespace per controller (glpl-controller, glpl-controller2), each joined to the
bridge by a veth pair (host side glpl-veth1/2, eth0 inside). Nothing is routed beyond the
bridge: traffic flows only between the host and the namespaces. Both controllers boot the
same cached image (read-only lower layer, `--volatile=overlay` each):

- controller (10.77.0.11) keeps every lab service of the single lab (MariaDB, PostgreSQL,
  memcached, Keystone, Swift, RabbitMQ) and runs HAProxy, its frontend on :9200 in front of Glance's
  :9292 on both controllers;
- controller2 (10.77.0.12) runs sshd and systemd's basics only: the services are masked
  (systemd.mask= on its command line, which systemd reads as its kernel command line).

The image's lab-cluster.service (provision.sh `cluster`) binds the services to the
controller's address at boot, before they start, from the files bind-mounted at
/etc/lab-cluster; after boot Keystone's catalog is rewritten to that address and MariaDB's
admin gets an account for the subnet. Nothing of it outlives the session's overlay.

The cluster uses its own machine, cgroup, namespace and run-dir names and no host port,
so it runs beside the single lab (lab.controller) or without it. One cluster per machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import locks, nspawn, session
from .controller import keystone_token
from .errors import LabError
from .image import ensure_image, image_dir, read_secrets
from .paths import (
    CLUSTER_BRIDGE,
    CLUSTER_HOST_ADDRESS,
    CLUSTER_LB_PORT,
    CLUSTER_LB_STATS_PORT,
    CLUSTER_MACHINE_PREFIX,
    CLUSTER_NODES,
    CLUSTER_SUBNET,
    LOOPBACK,
    PORTS,
    SWIFT_STORAGE_PORTS,
    cluster_run_dir,
)
from .session import Log, Session, SharedSession

__all__ = [
    "NODES",
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

BOOT_TIMEOUT = 300.0  # two containers on 2 shared cores
STOP_TIMEOUT = 30.0
PREFIX_LENGTH = ipaddress.ip_network(CLUSTER_SUBNET).prefixlen


def _stderr_log(message: str) -> None:
    print(f"[lab cluster] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Node:
    """One controller of the cluster; every host-side name derives from its hostname."""

    name: str  # hostname inside
    address: str
    index: int  # 1-based; the first is the primary

    @property
    def primary(self) -> bool:
        return self.index == 1

    @property
    def machine(self) -> str:
        return f"{CLUSTER_MACHINE_PREFIX}-{self.name}"

    @property
    def cgroup(self) -> str:
        return self.machine

    @property
    def netns(self) -> str:
        return f"glpl-{self.name}"

    @property
    def veth(self) -> str:
        """The host's end of the pair (interface names are at most 15 bytes)."""
        return f"glpl-veth{self.index}"


NODES: tuple[Node, ...] = tuple(Node(name, address, i) for i, (name, address) in enumerate(CLUSTER_NODES, 1))
PRIMARY = NODES[0]
KEYSTONE_URL = f"http://{PRIMARY.address}:{PORTS['keystone']}/v3"
SWIFT_URL = f"http://{PRIMARY.address}:{PORTS['swift']}"
LB_URL = f"http://{PRIMARY.address}:{CLUSTER_LB_PORT}"
LB_STATS_URL = f"http://{PRIMARY.address}:{CLUSTER_LB_STATS_PORT}/"
# Masked on every controller but the first (plus every non-template swift unit of the image).
SECONDARY_MASKED = (
    "mariadb.service",
    "postgresql.service",
    "postgresql@15-main.service",
    "memcached.service",
    "keystone.service",
    "haproxy.service",
    "rabbitmq-server.service",
    "epmd.socket",
    "epmd.service",
)


# ---- run-dir state ---------------------------------------------------------------------


def _state_path() -> Path:
    return cluster_run_dir() / "state.json"


def connection_path() -> Path:
    return cluster_run_dir() / "connection.json"


def known_hosts_path() -> Path:
    """The image's host key for every controller's address (same image, same key)."""
    return cluster_run_dir() / "known_hosts"


def _read_state() -> dict[str, Any] | None:
    return session.read_json(_state_path())


def _recorded_pids() -> dict[str, int]:
    state = _read_state() or {}
    return {name: int(pid) for name, pid in state.get("nspawn_pids", {}).items()}


def is_up() -> bool:
    """Up if every controller's recorded nspawn still runs (and is ours, not a reused PID)."""
    pids = _recorded_pids()
    return all(
        node.name in pids and nspawn.pid_alive(pids[node.name]) and nspawn.is_nspawn(pids[node.name], node.machine)
        for node in NODES
    )


def read_connection() -> dict[str, Any]:
    """The running cluster's connection settings (what `cluster-up` wrote)."""
    return session.read_connection(connection_path(), "no cluster is up (run `python3 -m lab cluster-up`)")


def _run_lock() -> AbstractContextManager[None]:
    return locks.exclusive("cluster-run.lock")


def _write_state(image: Path, pids: dict[str, int]) -> None:
    state = {"image": str(image), "started_at": time.time(), "nspawn_pids": pids}
    session.write_private(_state_path(), json.dumps(state) + "\n")


# ---- host network: bridge, namespaces, veth pairs ------------------------------------


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise LabError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def _subnet_clashes() -> list[str]:
    """Host addresses or routes, not the cluster's own, that overlap its subnet."""
    subnet = ipaddress.ip_network(CLUSTER_SUBNET)
    clashes = []
    addresses = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
    for line in addresses.splitlines():
        fields = line.split()
        if fields[1] != CLUSTER_BRIDGE and ipaddress.ip_interface(fields[3]).network.overlaps(subnet):
            clashes.append(f"{fields[3]} on {fields[1]}")
    routes = subprocess.run(["ip", "-o", "-4", "route", "show"], capture_output=True, text=True, check=True).stdout
    for line in routes.splitlines():
        fields = line.split()
        if fields[0] == "default" or f"dev {CLUSTER_BRIDGE}" in line:
            continue
        if ipaddress.ip_network(fields[0], strict=False).overlaps(subnet):
            clashes.append(f"route {line.strip()}")
    return clashes


def _create_network() -> None:
    _ip("link", "add", CLUSTER_BRIDGE, "type", "bridge")
    _ip("addr", "add", f"{CLUSTER_HOST_ADDRESS}/{PREFIX_LENGTH}", "dev", CLUSTER_BRIDGE)
    _ip("link", "set", CLUSTER_BRIDGE, "up")
    for node in NODES:
        _ip("netns", "add", node.netns)
        _ip("link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
        _ip("link", "set", node.veth, "master", CLUSTER_BRIDGE, "up")
        _ip("-n", node.netns, "addr", "add", f"{node.address}/{PREFIX_LENGTH}", "dev", "eth0")
        _ip("-n", node.netns, "link", "set", "eth0", "up")
        _ip("-n", node.netns, "link", "set", "lo", "up")


def _remove_network() -> list[str]:
    """Delete what exists of the cluster's network; returns what was there. Deleting one
    end of a veth pair deletes the other; a namespace goes once no process is left in it."""
    removed = []
    for node in NODES:
        if _link_exists(node.veth):
            _ip("link", "del", node.veth)
            removed.append(node.veth)
        if _netns_exists(node.netns):
            _ip("netns", "del", node.netns)
            removed.append(f"netns {node.netns}")
    if _link_exists(CLUSTER_BRIDGE):
        _ip("link", "del", CLUSTER_BRIDGE)
        removed.append(CLUSTER_BRIDGE)
    return removed


def leftovers() -> dict[str, list[str]]:
    """Whatever of a cluster exists on this machine: processes in its cgroups, cgroups,
    namespaces, links, run dir. Empty when no cluster is up and none left anything."""
    found: dict[str, list[str]] = {}
    pids = sorted(pid for node in NODES for pid in nspawn.cgroup_pids(node.cgroup))
    cgroups = [str(path) for node in NODES for path in nspawn.cgroup_dirs(node.cgroup) if path.exists()]
    netns = [node.netns for node in NODES if _netns_exists(node.netns)]
    links = [name for name in (CLUSTER_BRIDGE, *(node.veth for node in NODES)) if _link_exists(name)]
    for key, values in (("processes", [str(p) for p in pids]), ("cgroups", cgroups), ("netns", netns)):
        if values:
            found[key] = values
    if links:
        found["links"] = links
    if cluster_run_dir().exists():
        found["run_dir"] = [str(cluster_run_dir())]
    return found


# ---- per-session files ------------------------------------------------------------------


def haproxy_config() -> str:
    """HAProxy on the first controller: Glance on every controller behind :9200.

    Checks every second, one failure marks a server down, one success up again; a request
    that cannot connect is retried (3 times), on another server (redispatch). A read whose
    server closed the connection without a whole response (glance-api stopping under it)
    is retried the same way; a write is not, as it may have been applied. Client and
    server timeouts are generous: an image upload streams for as long as it takes.
    """
    servers = "\n".join(f"    server {node.name} {node.address}:{PORTS['glance']} check" for node in NODES)
    return f"""# Written by lab.cluster for this session; lab-cluster.service installs it.
global
    log /dev/log local0
    user haproxy
    group haproxy
    maxconn 4096

defaults
    mode http
    log global
    option httplog
    option dontlognull
    option redispatch
    retries 3
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout http-request 60s
    timeout http-keep-alive 10s
    timeout queue 60s
    timeout check 2s

frontend glance_api
    bind {PRIMARY.address}:{CLUSTER_LB_PORT}
    default_backend glance_api

backend glance_api
    balance roundrobin
    option httpchk GET /healthcheck
    http-check expect status 200
    option redispatch 1
    retry-on conn-failure empty-response junk-response response-timeout
    http-request disable-l7-retry if !METH_GET
    default-server inter 1s fall 1 rise 1
{servers}

listen stats
    bind {PRIMARY.address}:{CLUSTER_LB_STATS_PORT}
    stats enable
    stats uri /
    stats refresh 5s
"""


def _hosts_file() -> str:
    names = "".join(f"{node.address}\t{node.name}\n" for node in NODES)
    return (
        f"127.0.0.1\tlocalhost\n{names}"
        "::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"
    )


def _write_node_configs(run: Path) -> None:
    """run/nodes/<name>/, bind-mounted read-only at /etc/lab-cluster in that controller."""
    for node in NODES:
        directory = run / "nodes" / node.name
        directory.mkdir(parents=True)
        (directory / "cluster.env").write_text(
            f"LAB_CLUSTER_ROLE={'primary' if node.primary else 'secondary'}\n"
            f"LAB_CLUSTER_HOSTNAME={node.name}\n"
            f"LAB_CLUSTER_ADDRESS={node.address}\n"
            f"LAB_CLUSTER_SUBNET={CLUSTER_SUBNET}\n"
        )
        (directory / "hosts").write_text(_hosts_file())
        if node.primary:
            (directory / "haproxy.cfg").write_text(haproxy_config())


def masked_units(image: Path) -> list[str]:
    """The services a secondary controller must not run: the lab's and every swift unit."""
    swift = sorted(
        unit.name for unit in (image / "rootfs/lib/systemd/system").glob("swift*.service") if "@" not in unit.name
    )
    return [*SECONDARY_MASKED, *swift]


def _kernel_command_line(node: Node, image: Path) -> list[str]:
    """Arguments after nspawn's options go to the container's systemd, which reads them as
    its kernel command line (systemd.hostname=, .wants=, .mask= all apply; measured)."""
    argv = [f"systemd.hostname={node.name}"]
    if node.primary:
        return [*argv, "systemd.wants=haproxy.service"]
    return [*argv, *(f"systemd.mask={unit}" for unit in masked_units(image))]


def _launch(node: Node, image: Path, run: Path) -> nspawn.Launch:
    return nspawn.Launch(
        rootfs=image / "rootfs",
        machine=node.machine,
        cgroup=node.cgroup,
        flags=[
            "--boot",
            "--volatile=overlay",  # pristine root every session: tmpfs upper layer each
            "--resolv-conf=copy-host",  # (no route to the host's resolver: lookups fail fast)
            f"--network-namespace-path=/run/netns/{node.netns}",
            f"--bind-ro={run / 'authorized_keys'}:/root/.ssh/authorized_keys",
            f"--bind-ro={run / 'nodes' / node.name}:/etc/lab-cluster",
        ],
        argv=_kernel_command_line(node, image),
    )


# ---- preflight --------------------------------------------------------------------------


def _preflight(log: Log) -> None:
    if os.geteuid() != 0:
        raise LabError("the cluster needs root (systemd-nspawn, cgroups, network namespaces)")
    missing = [tool for tool in ("ip", "nsenter", "ssh", "ssh-keygen") if shutil.which(tool) is None]
    if missing:
        raise LabError(f"missing on the host: {', '.join(missing)}")
    if is_up():
        raise LabError(
            f"a cluster is already up (nspawn PIDs {_recorded_pids()}); run `python3 -m lab cluster-down` first"
        )
    left = leftovers()
    if left:  # an earlier cluster died without `cluster-down` (containers may even run on)
        log(f"cleaning up after an earlier cluster run: {left}")
        _shutdown_locked(log, STOP_TIMEOUT)
    clashes = _subnet_clashes()
    if clashes:
        raise LabError(f"the cluster's subnet {CLUSTER_SUBNET} clashes with the host's: {'; '.join(clashes)}")


# ---- boot ---------------------------------------------------------------------------------


def boot(log: Log = _stderr_log, timeout: float = BOOT_TIMEOUT) -> dict[str, Any]:
    """Create the network, boot both controllers from the cached image (building it if
    needed), wait until everything a deployment uses answers at its cluster address.

    Returns the connection settings, also written to cluster-run/connection.json (0600).
    On any failure, everything started so far is torn down before the error propagates.
    """
    image = ensure_image(log)
    with _run_lock():
        _preflight(log)
        run = cluster_run_dir()
        run.mkdir(parents=True, mode=0o700)
        procs: dict[str, subprocess.Popen[bytes]] = {}
        started = time.monotonic()
        try:
            _write_state(image, {})  # from here on, a killed run leaves a trace to clean up
            key = session.make_session_key(run, image, "glance-pulumi-cluster", [node.address for node in NODES])
            _write_node_configs(run)
            _create_network()
            for node in NODES:
                procs[node.name] = nspawn.start(_launch(node, image, run), _console_path(node))
            _write_state(image, {name: proc.pid for name, proc in procs.items()})
            timings = _wait_until_ready(procs, started, key, image, timeout)
            connection = _connection({name: proc.pid for name, proc in procs.items()}, key, image)
            session.write_private(connection_path(), json.dumps(connection, indent=2) + "\n")
        except BaseException:
            _shutdown_locked(log, STOP_TIMEOUT, reaps=procs)
            raise
    log(f"cluster up (nspawn PIDs {connection['nspawn_pids']}): {_summary(timings)}")
    log(f"connection settings: {connection_path()}")
    return connection


def _console_path(node: Node) -> Path:
    return cluster_run_dir() / f"console-{node.name}.log"


def _summary(timings: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in timings.items())


def _wait_until_ready(
    procs: dict[str, subprocess.Popen[bytes]], started: float, key: Path, image: Path, timeout: float
) -> dict[str, float]:
    """Poll every milestone together (each gets its own timing), then set up and check
    what crosses controllers: the admin's database logins, Keystone's catalog."""
    timings: dict[str, float] = {}
    deadline = started + timeout
    pending = [f"running {node.name}" for node in NODES] + [f"ssh {node.name}" for node in NODES]
    pending += ["memcached", "keystone", "swift", "rabbitmq", "haproxy"]
    while pending:
        for node in NODES:
            if procs[node.name].poll() is not None:
                raise LabError(
                    f"systemd-nspawn of {node.name} exited ({procs[node.name].returncode}) during boot:\n"
                    f"{nspawn.log_tail(_console_path(node))}"
                )
        if time.monotonic() > deadline:
            raise LabError(f"cluster not ready after {timeout:.0f}s (waiting for {pending}):\n{_consoles_tail()}")
        for milestone in list(pending):
            if _reached(milestone, procs):
                timings[milestone] = time.monotonic() - started
                pending.remove(milestone)
        time.sleep(0.1)
    secrets_ = read_secrets(image)
    primary_pid = procs[PRIMARY.name].pid
    _grant_remote_admin(primary_pid, secrets_)
    _rewrite_catalog(secrets_["keystone_admin_password"])
    for node in NODES:
        _check_ssh_login(key, node)
    # The admin accounts over TCP from another controller to the first's address.
    last = NODES[-1]
    session.check_database_logins(
        lambda script: _ssh_raw(key, "bash -s", last, input=script, timeout=60),
        PRIMARY.address,
        secrets_,
        f"from {last.name}",
    )
    keystone_token(secrets_["keystone_admin_password"], auth_url=KEYSTONE_URL)
    timings["all checks"] = time.monotonic() - started
    return timings


def _reached(milestone: str, procs: dict[str, subprocess.Popen[bytes]]) -> bool:
    what, _, name = milestone.partition(" ")
    if what == "running":
        node = next(n for n in NODES if n.name == name)
        return _booted(node, procs[name].pid)
    if what == "ssh":
        return session.ssh_banner(next(n.address for n in NODES if n.name == name))
    if what == "memcached":
        return _memcached_answers()
    if what == "keystone":
        return session.http_status(KEYSTONE_URL) == 200
    if what == "swift":  # the proxy at the cluster address, its storage servers on loopback inside
        if session.http_status(f"{SWIFT_URL}/healthcheck") != 200:
            return False
        urls = [f"http://{LOOPBACK}:{PORTS[name]}/healthcheck" for name in SWIFT_STORAGE_PORTS]
        result = nspawn.container_run(procs[PRIMARY.name].pid, ["curl", "-fsS", "--max-time", "2", *urls])
        return result is not None and result.returncode == 0
    if what == "rabbitmq":
        return session.amqp_answers(PRIMARY.address)
    if what == "haproxy":  # any HTTP answer: 503 while no Glance is up behind it
        return session.http_status(f"{LB_URL}/healthcheck") is not None
    raise AssertionError(milestone)


def _booted(node: Node, nspawn_pid: int) -> bool:
    """systemd finished booting; lab-cluster.service must then have succeeded."""
    result = nspawn.container_run(nspawn_pid, ["systemctl", "is-system-running"])
    if result is None or result.stdout.strip() not in ("running", "degraded"):
        return False
    unit = nspawn.container_run(nspawn_pid, ["systemctl", "is-active", "lab-cluster.service"])
    if unit is None or unit.stdout.strip() != "active":
        journal = nspawn.container_run(
            nspawn_pid, ["journalctl", "-b", "-u", "lab-cluster.service", "--no-pager", "-n", "40"]
        )
        raise LabError(
            f"lab-cluster.service did not succeed on {node.name}: {unit.stdout.strip() if unit else '?'}\n"
            f"{journal.stdout if journal else ''}"
        )
    return True


def _memcached_answers() -> bool:
    try:
        with socket.create_connection((PRIMARY.address, PORTS["memcached"]), timeout=1) as sock:
            sock.sendall(b"version\r\n")
            return sock.recv(64).startswith(b"VERSION ")
    except OSError:
        return False


def _consoles_tail() -> str:
    return "\n".join(f"--- {node.name}\n{nspawn.log_tail(_console_path(node), 20)}" for node in NODES)


def _grant_remote_admin(primary_pid: int, secrets_: dict[str, str]) -> None:
    """The image's admin account exists for localhost and 127.0.0.1; give it one for the
    cluster's subnet too (the other controller, the host). SQL, password included, on
    stdin to the root client over MariaDB's socket, inside the first controller."""
    host = CLUSTER_SUBNET.rsplit(".", 1)[0] + ".%"  # 10.77.0.%: MariaDB's host pattern
    user = f"'{secrets_['mysql_admin_user']}'@'{host}'"
    sql = (
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY '{secrets_['mysql_admin_password']}';\n"
        f"GRANT ALL PRIVILEGES ON *.* TO {user} WITH GRANT OPTION;\nFLUSH PRIVILEGES;\n"
    )
    deadline = time.monotonic() + 60
    while True:
        result = nspawn.container_run(primary_pid, ["mariadb", "--batch"], input=sql)
        if result is not None and result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise LabError(f"could not create the admin's account for {host}: {result.stderr if result else ''}")
        time.sleep(0.5)


def _keystone(method: str, path: str, token: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    for attempt in range(5):  # uwsgi's http-socket: a fresh connection each time, rarely reset
        request = urllib.request.Request(f"{KEYSTONE_URL}{path}", data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            raise LabError(f"keystone {method} {path}: HTTP {error.code}") from None
        except OSError:
            if attempt == 4:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _rewrite_catalog(admin_password: str) -> list[str]:
    """Keystone's endpoints (identity's from bootstrap, Swift's) name 127.0.0.1: give them
    the first controller's address, through the API (which also invalidates Keystone's
    cached catalog). Returns the endpoints' URLs afterwards."""
    token = keystone_token(admin_password, auth_url=KEYSTONE_URL)
    old, new = f"//{LOOPBACK}:", f"//{PRIMARY.address}:"
    for endpoint in _keystone("GET", "/endpoints", token)["endpoints"]:
        if old in endpoint["url"]:
            url = endpoint["url"].replace(old, new)
            _keystone("PATCH", f"/endpoints/{endpoint['id']}", token, {"endpoint": {"url": url}})
    urls = [endpoint["url"] for endpoint in _keystone("GET", "/endpoints", token)["endpoints"]]
    if any(old in url for url in urls):
        raise LabError(f"keystone's catalog still names {LOOPBACK}: {urls}")
    return urls


def _check_ssh_login(key: Path, node: Node) -> None:
    result = _ssh_raw(key, "true", node, timeout=30)
    if result.returncode != 0:
        raise LabError(f"ssh key login to {node.name} ({node.address}) failed: {result.stderr.strip()}")


def _connection(pids: dict[str, int], key: Path, image: Path) -> dict[str, Any]:
    connection = session.connection_settings(PRIMARY.address, KEYSTONE_URL, SWIFT_URL, key, image, read_secrets(image))
    return {
        **connection,
        "hosts": [{"name": node.name, "address": node.address} for node in NODES],
        "load_balancer": {"url": LB_URL, "stats": LB_STATS_URL},
        "nspawn_pids": pids,
    }


# ---- ssh ------------------------------------------------------------------------------


def node_for(host: str | None) -> Node:
    """The controller with this address or hostname; None: the first."""
    if host is None:
        return PRIMARY
    for node in NODES:
        if host in (node.address, node.name):
            return node
    raise LabError(f"no controller {host!r} in the cluster (have {[n.address for n in NODES]})")


def ssh_argv(command: str, host: str | None = None, key: Path | None = None) -> list[str]:
    """argv for running `command` as root on a controller over ssh, host key pinned."""
    key = key or Path(read_connection()["ssh"]["private_key_path"])
    return session.ssh_argv(command, key, known_hosts_path(), node_for(host).address)


def _ssh_raw(
    key: Path, command: str, node: Node, input: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return session.run_ssh(ssh_argv(command, node.address, key), input=input, timeout=timeout)


def ssh(
    command: str, input: str | None = None, check: bool = True, timeout: float = 600, host: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a shell command as root on a controller (address or hostname; None: the first).
    Secrets go in `input`. Raises LabError with the output if `check` and it fails."""
    node = node_for(host)
    key = Path(read_connection()["ssh"]["private_key_path"])
    result = _ssh_raw(key, command, node, input=input, timeout=timeout)
    return session.checked(result, command, f"command on {node.name}") if check else result


# ---- shutdown ------------------------------------------------------------------------------


def shutdown(log: Log = _stderr_log, timeout: float = STOP_TIMEOUT) -> str:
    """Stop the cluster and remove its network, cgroups and run dir; safe when none is up.
    Returns what happened to the controllers ("terminated", "killed", "orphan stopped",
    "not running", or one per controller when they differ)."""
    with _run_lock():
        return _shutdown_locked(log, timeout)


def _shutdown_locked(log: Log, timeout: float, reaps: dict[str, subprocess.Popen[bytes]] | None = None) -> str:
    reaps = reaps or {}
    pids = _recorded_pids()
    started = time.monotonic()

    def stop(node: Node) -> str:
        pid, reap = pids.get(node.name), reaps.get(node.name)
        if pid is not None and nspawn.is_nspawn(pid, node.machine):
            return nspawn.stop(pid, node.cgroup, timeout=timeout, reap=reap if reap and reap.pid == pid else None)
        if reap is not None:
            return nspawn.stop(reap.pid, node.cgroup, timeout=timeout, reap=reap)
        # no nspawn (never started, or it died): its container may still run, orphaned
        return "orphan stopped" if nspawn.stop_orphans(node.cgroup, timeout) else "not running"

    with ThreadPoolExecutor(len(NODES)) as pool:  # both power off at once
        outcomes = dict(zip((node.name for node in NODES), pool.map(stop, NODES), strict=True))
    for node in NODES:
        nspawn.remove_cgroup(node.cgroup)
    removed = _remove_network()
    shutil.rmtree(cluster_run_dir(), ignore_errors=True)
    distinct = set(outcomes.values())
    outcome = distinct.pop() if len(distinct) == 1 else ", ".join(f"{n} {o}" for n, o in outcomes.items())
    if outcome != "not running" or removed:
        network = ", ".join(removed) or "nothing"
        log(f"cluster down ({outcome}; network removed: {network}) in {time.monotonic() - started:.1f}s")
    return outcome


# ---- status --------------------------------------------------------------------------------


def status() -> dict[str, Any]:
    """Up? Per controller: PID, systemd state, failed units, memory; HAProxy; leftovers."""
    info: dict[str, Any] = {
        "up": is_up(),
        "image": str(image_dir()),
        "image_built": (image_dir() / "manifest.json").is_file(),
    }
    if not info["up"]:
        left = leftovers()
        if left:  # a dead or half-dead cluster: `cluster-down` cleans it
            info["leftovers"] = left
        return info
    state = _read_state() or {}
    pids = _recorded_pids()
    nodes = []
    for node in NODES:
        pid = pids[node.name]
        nodes.append(
            {
                "name": node.name,
                "address": node.address,
                "nspawn_pid": pid,
                "system_state": nspawn.system_state(pid),
                "failed_units": nspawn.failed_units(pid),
                "memory_pss_mib": round(nspawn.memory_pss([node.cgroup]) / 2**20, 1),
            }
        )
    haproxy = nspawn.container_run(pids[PRIMARY.name], ["systemctl", "is-active", "haproxy.service"])
    info.update(
        uptime_s=round(time.time() - float(state.get("started_at", time.time())), 1),
        running_image=state.get("image"),
        nodes=nodes,
        haproxy=haproxy.stdout.strip() if haproxy else "",
        load_balancer_status=session.http_status(f"{LB_URL}/healthcheck"),
        memory_pss_mib=round(nspawn.memory_pss(node.cgroup for node in NODES) / 2**20, 1),
        connection=str(connection_path()),
    )
    return info


# ---- context manager -----------------------------------------------------------------------


class Cluster(Session):
    """`with Cluster() as cluster:` boots both controllers and always tears everything
    down afterwards (see Session)."""

    def __init__(self, log: Log = _stderr_log, timeout: float = BOOT_TIMEOUT) -> None:
        super().__init__(log, timeout)

    def _boot(self) -> dict[str, Any]:
        return boot(self.log, self.timeout)

    def _shutdown(self) -> str:
        return shutdown(self.log)

    def _running(self) -> bool:
        return is_up()

    @property
    def hosts(self) -> list[dict[str, str]]:
        """[{"name": ..., "address": ...}] for every controller, the first first."""
        return list(self.connection.get("hosts", []))

    def ssh(
        self, command: str, input: str | None = None, check: bool = True, timeout: float = 600, host: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Like lab.controller.ssh, on the controller `host` (address or hostname; None:
        the first)."""
        return ssh(command, input=input, check=check, timeout=timeout, host=host)


# ---- one cluster per process, shared by several users (e.g. pytest fixtures) --------------

shared: SharedSession[Cluster] = SharedSession(Cluster)
