"""One lifecycle for any lab topology (lab.topology): boot, wait, ssh, status, shutdown.

boot: build the image if needed; under the topology's lock, refuse a second one, clean up
after a killed one, check the network plan; make the run dir (session key, each node's
plan), create the network, start every node's nspawn, wait for every milestone, open the
services to the network if the nodes have one, check the logins a deployment uses, write
connection.json. Any failure tears down whatever was started before it propagates.
State lives in the run dir, so that `up` and `down` can be separate processes.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from . import locks, nspawn, session
from .errors import LabError
from .image import ensure_image, image_dir, read_secrets
from .paths import LOOPBACK, PORTS, SWIFT_STORAGE_PORTS
from .topology import BridgeNetwork, Node, Topology

Log = Callable[[str], None]
Pids = Mapping[str, int]  # nspawn's PID by node name
STOP_TIMEOUT = 30.0
# Masked on every node but the first (plus every non-template swift unit of the image).
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


def stderr_log(topology: Topology) -> Log:
    prefix = "[lab]" if topology.name == "lab" else f"[lab {topology.name}]"
    return lambda message: print(f"{prefix} {message}", file=sys.stderr, flush=True)


# ---- run-dir state ---------------------------------------------------------------------


def connection_path(topology: Topology) -> Path:
    return topology.run_dir / "connection.json"


def known_hosts_path(topology: Topology) -> Path:
    """The image's host key at every node's address (same image, same key)."""
    return topology.run_dir / "known_hosts"


def console_path(topology: Topology, node: Node) -> Path:
    return topology.run_dir / f"console-{node.name}.log"


def _state_path(topology: Topology) -> Path:
    return topology.run_dir / "state.json"


def _write_state(topology: Topology, image: Path, pids: Pids) -> None:
    state = {"image": str(image), "started_at": time.time(), "nspawn_pids": dict(pids)}
    session.write_private(_state_path(topology), json.dumps(state) + "\n")


def recorded_pids(topology: Topology) -> dict[str, int]:
    state = session.read_json(_state_path(topology)) or {}
    return {name: int(pid) for name, pid in state.get("nspawn_pids", {}).items()}


def is_up(topology: Topology) -> bool:
    """Up if every node's recorded nspawn still runs (and is ours, not a reused PID)."""
    pids = recorded_pids(topology)
    return all(
        node.name in pids and nspawn.pid_alive(pids[node.name]) and nspawn.is_nspawn(pids[node.name], node.machine)
        for node in topology.nodes
    )


def read_connection(topology: Topology) -> dict[str, Any]:
    """The running lab's connection settings (what `up` wrote)."""
    return session.read_connection(connection_path(topology), f"no {topology.name} is up (run `{topology.up_command}`)")


def leftovers(topology: Topology) -> dict[str, list[str]]:
    """Whatever of this lab exists on the machine: processes in its cgroups, cgroups, network,
    run dir. Empty when none is up and none left anything."""
    found: dict[str, list[str]] = {}
    pids = sorted(pid for node in topology.nodes for pid in nspawn.cgroup_pids(node.cgroup))
    cgroups = [str(path) for node in topology.nodes for path in nspawn.cgroup_dirs(node.cgroup) if path.exists()]
    for key, values in (("processes", [str(pid) for pid in pids]), ("cgroups", cgroups)):
        if values:
            found[key] = values
    found.update(topology.network.leftovers(topology.nodes))
    if topology.run_dir.exists():
        found["run_dir"] = [str(topology.run_dir)]
    return found


# ---- preflight and launch ------------------------------------------------------------------


def _preflight(topology: Topology, log: Log) -> None:
    if os.geteuid() != 0:
        raise LabError(f"the {topology.name} needs root (systemd-nspawn, cgroups, network namespaces)")
    missing = [tool for tool in ("ip", "nsenter", "ssh", "ssh-keygen") if shutil.which(tool) is None]
    if missing:
        raise LabError(f"missing on the host: {', '.join(missing)}")
    if is_up(topology):
        raise LabError(
            f"a {topology.name} is already up (nspawn PIDs {recorded_pids(topology)}); "
            f"run `{topology.down_command}` first"
        )
    left = leftovers(topology)
    if left:  # an earlier one died without `down` (its containers may even run on, orphaned)
        log(f"cleaning up after an earlier {topology.name} run: {left}")
        _shutdown_locked(topology, log, STOP_TIMEOUT)
    topology.network.preflight()


def masked_units(image: Path) -> list[str]:
    """The services a secondary node must not run: the lab's and every swift unit."""
    swift = sorted(
        unit.name for unit in (image / "rootfs/lib/systemd/system").glob("swift*.service") if "@" not in unit.name
    )
    return [*SECONDARY_MASKED, *swift]


def _kernel_command_line(topology: Topology, node: Node, image: Path) -> list[str]:
    """Arguments after nspawn's options go to the container's systemd, which reads them as
    its kernel command line (systemd.hostname=, .wants=, .mask= all apply; measured)."""
    if not topology.plans_nodes:
        return []  # the image's own hostname and services
    argv = [f"systemd.hostname={node.name}"]
    if not node.primary:
        return [*argv, *(f"systemd.mask={unit}" for unit in masked_units(image))]
    return [*argv, "systemd.wants=haproxy.service"] if topology.balancer_ports else argv


def _launch(topology: Topology, node: Node, image: Path) -> nspawn.Launch:
    run = topology.run_dir
    flags = [
        "--boot",
        "--volatile=overlay",  # pristine root every session: tmpfs upper layer each
        "--resolv-conf=copy-host",  # (in a namespace, no route to the host's resolver: lookups fail fast)
        f"--bind-ro={run / 'authorized_keys'}:/root/.ssh/authorized_keys",
    ]
    if node.netns:
        flags.append(f"--network-namespace-path=/run/netns/{node.netns}")
    if topology.plans_nodes:
        flags.append(f"--bind-ro={run / 'nodes' / node.name}:/etc/lab-cluster")
    return nspawn.Launch(
        rootfs=image / "rootfs",
        machine=node.machine,
        cgroup=node.cgroup,
        flags=flags,
        argv=_kernel_command_line(topology, node, image),
    )


def _write_plans(topology: Topology) -> None:
    """run/nodes/<name>/node.json, bind-mounted read-only at /etc/lab-cluster in that node."""
    for node in topology.nodes:
        directory = topology.run_dir / "nodes" / node.name
        directory.mkdir(parents=True)
        (directory / "node.json").write_text(topology.node_plan(node).to_json() + "\n")


# ---- boot ---------------------------------------------------------------------------------


def boot(topology: Topology, log: Log, timeout: float) -> dict[str, Any]:
    """Boot every node from the cached image (building it if needed) and wait until
    everything a deployment uses answers. Returns the connection settings, also written
    to connection.json (0600). On any failure, whatever was started is torn down first."""
    image = ensure_image(log)
    with locks.exclusive(topology.lock_name):
        _preflight(topology, log)
        topology.run_dir.mkdir(parents=True, mode=0o700)
        procs: dict[str, subprocess.Popen[bytes]] = {}
        started = time.monotonic()
        try:
            _write_state(topology, image, {})  # from here on, a killed run leaves a trace to clean up
            addresses = [node.address for node in topology.nodes]
            key = session.make_session_key(topology.run_dir, image, f"glance-pulumi-{topology.name}", addresses)
            if topology.plans_nodes:
                _write_plans(topology)
            topology.network.create(topology.nodes)
            for node in topology.nodes:
                procs[node.name] = nspawn.start(_launch(topology, node, image), console_path(topology, node))
            pids = {name: proc.pid for name, proc in procs.items()}
            _write_state(topology, image, pids)
            timings = _wait_until_ready(topology, procs, started, key, image, timeout)
            connection = _connection(topology, pids, key, image)
            session.write_private(connection_path(topology), json.dumps(connection, indent=2) + "\n")
        except BaseException:
            _shutdown_locked(topology, log, STOP_TIMEOUT, reaps=procs)
            raise
    log(f"{topology.name} up (nspawn PIDs {pids}): {timings}")
    log(f"connection settings: {connection_path(topology)}")
    return connection


@dataclass(frozen=True)
class Milestone:
    """A point of the boot that the wait polls for: `reached(pids)` once it is there."""

    name: str
    reached: Callable[[Pids], bool]


def milestones(topology: Topology) -> list[Milestone]:
    """Each node booted (systemd) and answering ssh; then the services, on the first node."""
    address = topology.service_address
    found = [
        milestone
        for node in topology.nodes
        for milestone in (
            Milestone(f"running {node.name}", partial(_booted, topology, node)),
            Milestone(f"ssh {node.name}", partial(_ssh_answers, node)),
        )
    ]
    found += [
        Milestone("memcached", lambda _: session.memcached_answers(address)),
        Milestone("keystone", lambda _: session.http_status(topology.keystone_url) == 200),
        Milestone("swift", partial(_swift_healthy, topology)),
        Milestone("rabbitmq", lambda _: session.amqp_answers(address)),
    ]
    if topology.balancer_urls:  # any HTTP answer: 503 while no Glance is up behind it
        balancer = f"{topology.balancer_urls[0]}/healthcheck"
        found.append(Milestone("haproxy", lambda _: session.http_status(balancer) is not None))
    return found


def _ssh_answers(node: Node, _: Pids) -> bool:
    return session.ssh_banner(node.address)


def _booted(topology: Topology, node: Node, pids: Pids) -> bool:
    """systemd finished booting; lab-cluster.service must then have rendered its plan."""
    pid = pids[node.name]
    if nspawn.system_state(pid) not in ("running", "degraded"):
        return False
    if not topology.plans_nodes:
        return True
    unit = nspawn.container_run(pid, ["systemctl", "is-active", "lab-cluster.service"])
    if unit is None or unit.stdout.strip() != "active":
        journal = nspawn.container_run(pid, ["journalctl", "-b", "-u", "lab-cluster.service", "--no-pager", "-n", "40"])
        raise LabError(
            f"lab-cluster.service did not succeed on {node.name}: {unit.stdout.strip() if unit else '?'}\n"
            f"{journal.stdout if journal else ''}"
        )
    return True


def _swift_healthy(topology: Topology, pids: Pids) -> bool:
    """The proxy answers /healthcheck at the service address; the account, container and
    object servers on the first node's loopback (asked from inside it)."""
    if session.http_status(f"{topology.swift_url}/healthcheck") != 200:
        return False
    urls = [f"http://{LOOPBACK}:{PORTS[name]}/healthcheck" for name in SWIFT_STORAGE_PORTS]
    result = nspawn.container_run(pids[topology.primary.name], ["curl", "-fsS", "--max-time", "2", *urls])
    return result is not None and result.returncode == 0


def _wait_until_ready(
    topology: Topology,
    procs: Mapping[str, subprocess.Popen[bytes]],
    started: float,
    key: Path,
    image: Path,
    timeout: float,
) -> str:
    """Poll every milestone together (each gets its own timing), then set up and check what
    a deployment crosses: the admin's logins from the last node, a token. Returns a summary."""
    timings: dict[str, float] = {}
    pids = {name: proc.pid for name, proc in procs.items()}
    deadline = started + timeout
    pending = milestones(topology)
    while pending:
        for node in topology.nodes:
            if procs[node.name].poll() is not None:
                raise LabError(
                    f"systemd-nspawn of {node.name} exited ({procs[node.name].returncode}) during boot:\n"
                    f"{nspawn.log_tail(console_path(topology, node))}"
                )
        if time.monotonic() > deadline:
            waiting = [milestone.name for milestone in pending]
            raise LabError(
                f"{topology.name} not ready after {timeout:.0f}s (waiting for {waiting}):\n{_consoles(topology)}"
            )
        for milestone in list(pending):
            if milestone.reached(pids):
                timings[milestone.name] = time.monotonic() - started
                pending.remove(milestone)
        time.sleep(0.1)
    secrets_ = read_secrets(image)
    if isinstance(topology.network, BridgeNetwork):
        _serve_the_subnet(topology, topology.network, pids[topology.primary.name], secrets_)
    for node in topology.nodes:
        result = _ssh_raw(topology, key, "true", node, timeout=30)
        if result.returncode != 0:
            raise LabError(f"ssh key login to {node.name} ({node.address}) failed: {result.stderr.strip()}")
    # The admin accounts over TCP from the last node to the services' address (in the single
    # lab, the host's loopback: the same socket and account matching as from the host).
    last = topology.nodes[-1]
    session.check_database_logins(
        lambda script: _ssh_raw(topology, key, "bash -s", last, input=script, timeout=60),
        topology.service_address,
        secrets_,
        f"from {last.name}",
    )
    session.keystone_token(secrets_["keystone_admin_password"], auth_url=topology.keystone_url)
    timings["all checks"] = time.monotonic() - started
    summary = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in timings.items())
    failed = {node.name: nspawn.failed_units(pids[node.name]) for node in topology.nodes}
    failed = {name: units for name, units in failed.items() if units}
    return f"{summary}; failed units: {failed}" if failed else summary


def _consoles(topology: Topology) -> str:
    return "\n".join(f"--- {node.name}\n{nspawn.log_tail(console_path(topology, node), 20)}" for node in topology.nodes)


def _serve_the_subnet(
    topology: Topology, network: BridgeNetwork, primary_pid: int, secrets_: Mapping[str, str]
) -> None:
    """The image's services were set up for loopback: give the admin's MariaDB account the
    subnet too, and Keystone's catalog the first node's address."""
    _grant_remote_admin(network, primary_pid, secrets_)
    _rewrite_catalog(topology, secrets_["keystone_admin_password"])


def _grant_remote_admin(network: BridgeNetwork, primary_pid: int, secrets_: Mapping[str, str]) -> None:
    """The image's admin account exists for localhost and 127.0.0.1; give it one for the
    subnet (the other nodes, the host). SQL, password included, on stdin to the root client
    over MariaDB's socket, inside the first node."""
    host = network.subnet.rsplit(".", 1)[0] + ".%"  # 10.77.0.%: MariaDB's host pattern
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


def _rewrite_catalog(topology: Topology, admin_password: str) -> None:
    """Keystone's endpoints (identity's from bootstrap, Swift's) name 127.0.0.1: give them
    the first node's address, through the API (which also invalidates Keystone's cached
    catalog)."""
    url = topology.keystone_url
    token = session.keystone_token(admin_password, auth_url=url)
    old, new = f"//{LOOPBACK}:", f"//{topology.service_address}:"
    for endpoint in session.keystone_call(url, "GET", "/endpoints", token)["endpoints"]:
        if old in endpoint["url"]:
            patch = {"endpoint": {"url": endpoint["url"].replace(old, new)}}
            session.keystone_call(url, "PATCH", f"/endpoints/{endpoint['id']}", token, patch)
    urls = [endpoint["url"] for endpoint in session.keystone_call(url, "GET", "/endpoints", token)["endpoints"]]
    if any(old in endpoint for endpoint in urls):
        raise LabError(f"keystone's catalog still names {LOOPBACK}: {urls}")


def _connection(topology: Topology, pids: Pids, key: Path, image: Path) -> dict[str, Any]:
    """What a stack needs to deploy onto it; with several nodes, each node's name and
    address, and the load balancer's URLs if there is one."""
    connection = session.connection_settings(
        topology.service_address, topology.keystone_url, topology.swift_url, key, image, read_secrets(image)
    )
    if len(topology.nodes) == 1:
        return {**connection, "nspawn_pid": pids[topology.primary.name]}
    connection["hosts"] = [{"name": node.name, "address": node.address} for node in topology.nodes]
    if topology.balancer_urls:
        connection["load_balancer"] = dict(zip(("url", "stats"), topology.balancer_urls, strict=True))
    return {**connection, "nspawn_pids": dict(pids)}


# ---- ssh ------------------------------------------------------------------------------


def node_for(topology: Topology, host: str | None) -> Node:
    """The node with this address or hostname; None: the first."""
    if host is None:
        return topology.primary
    for node in topology.nodes:
        if host in (node.address, node.name):
            return node
    raise LabError(f"no controller {host!r} in the {topology.name} (have {[n.address for n in topology.nodes]})")


def ssh_argv(topology: Topology, command: str, host: str | None = None, key: Path | None = None) -> list[str]:
    """argv for running `command` as root on a node over ssh, host key pinned."""
    key = key or Path(read_connection(topology)["ssh"]["private_key_path"])
    return session.ssh_argv(command, key, known_hosts_path(topology), node_for(topology, host).address)


def _ssh_raw(
    topology: Topology, key: Path, command: str, node: Node, input: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return session.run_ssh(ssh_argv(topology, command, node.address, key), input=input, timeout=timeout)


def ssh(
    topology: Topology,
    command: str,
    input: str | None = None,
    check: bool = True,
    timeout: float = 600,
    host: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a shell command as root on a node (address or hostname; None: the first).
    Secrets go in `input`. Raises LabError with the output if `check` and it fails."""
    node = node_for(topology, host)
    key = Path(read_connection(topology)["ssh"]["private_key_path"])
    result = _ssh_raw(topology, key, command, node, input=input, timeout=timeout)
    return session.checked(result, command, f"command on {node.name}") if check else result


# ---- shutdown ------------------------------------------------------------------------------


def shutdown(topology: Topology, log: Log, timeout: float = STOP_TIMEOUT) -> str:
    """Stop every node and remove the network, cgroups and run dir; safe when none is up.
    Returns what happened to the nodes ("terminated", "killed", "orphan stopped", "not
    running", or one per node when they differ)."""
    with locks.exclusive(topology.lock_name):
        return _shutdown_locked(topology, log, timeout)


def _shutdown_locked(
    topology: Topology, log: Log, timeout: float, reaps: Mapping[str, subprocess.Popen[bytes]] | None = None
) -> str:
    reaps = reaps or {}
    pids = recorded_pids(topology)
    started = time.monotonic()

    def stop(node: Node) -> str:
        pid, reap = pids.get(node.name), reaps.get(node.name)
        if pid is not None and nspawn.is_nspawn(pid, node.machine):
            return nspawn.stop(pid, node.cgroup, timeout=timeout, reap=reap if reap and reap.pid == pid else None)
        if reap is not None:
            return nspawn.stop(reap.pid, node.cgroup, timeout=timeout, reap=reap)
        # no nspawn (never started, or it died): its container may still run, orphaned
        return "orphan stopped" if nspawn.stop_orphans(node.cgroup, timeout) else "not running"

    with ThreadPoolExecutor(len(topology.nodes)) as pool:  # every node powers off at once
        outcomes = dict(zip((node.name for node in topology.nodes), pool.map(stop, topology.nodes), strict=True))
    for node in topology.nodes:
        nspawn.remove_cgroup(node.cgroup)  # empty now: stop() / stop_orphans() ended it by PID
    removed = topology.network.remove(topology.nodes)
    shutil.rmtree(topology.run_dir, ignore_errors=True)
    distinct = set(outcomes.values())
    outcome = distinct.pop() if len(distinct) == 1 else ", ".join(f"{n} {o}" for n, o in outcomes.items())
    if outcome != "not running" or removed:
        network = f"; network removed: {', '.join(removed)}" if removed else ""
        log(f"{topology.name} down ({outcome}, PIDs {pids}{network}) in {time.monotonic() - started:.1f}s")
    return outcome


# ---- status --------------------------------------------------------------------------------


def status(topology: Topology) -> dict[str, Any]:
    """Up? Per node: PID, systemd state, failed units, memory; the load balancer; when
    down, whatever is left of an earlier run (`down` cleans it)."""
    info: dict[str, Any] = {
        "up": is_up(topology),
        "image": str(image_dir()),
        "image_built": (image_dir() / "manifest.json").is_file(),
    }
    if not info["up"]:
        left = leftovers(topology)
        if left:
            info["leftovers"] = left
        return info
    state = session.read_json(_state_path(topology)) or {}
    pids = recorded_pids(topology)
    info.update(
        uptime_s=round(time.time() - float(state.get("started_at", time.time())), 1),
        running_image=state.get("image"),
        nodes=[
            {
                "name": node.name,
                "address": node.address,
                "nspawn_pid": pids[node.name],
                "system_state": nspawn.system_state(pids[node.name]),
                "failed_units": nspawn.failed_units(pids[node.name]),
                "memory_pss_mib": round(nspawn.memory_pss([node.cgroup]) / 2**20, 1),
            }
            for node in topology.nodes
        ],
        memory_pss_mib=round(nspawn.memory_pss(node.cgroup for node in topology.nodes) / 2**20, 1),
        connection=str(connection_path(topology)),
        **topology.network.status(),
    )
    if topology.balancer_urls:
        haproxy = nspawn.container_run(pids[topology.primary.name], ["systemctl", "is-active", "haproxy.service"])
        info["haproxy"] = haproxy.stdout.strip() if haproxy else ""
        info["load_balancer_status"] = session.http_status(f"{topology.balancer_urls[0]}/healthcheck")
    return info


# ---- the booted object ------------------------------------------------------------------


class Session:
    """`with session:` boots the topology and always shuts it down afterwards; also at
    interpreter exit if the `with` block never got to, e.g. when a test run is interrupted."""

    def __init__(self, topology: Topology, log: Log | None = None, timeout: float | None = None) -> None:
        self.topology = topology
        self.log = log or stderr_log(topology)
        self.timeout = timeout or topology.boot_timeout
        self.connection: dict[str, Any] = {}
        self._booted = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> dict[str, Any]:
        self.connection = boot(self.topology, self.log, self.timeout)
        self._booted = True
        atexit.register(self.stop)
        return self.connection

    def stop(self) -> str:
        if not self._booted:
            return "not running"
        self._booted = False
        atexit.unregister(self.stop)
        return shutdown(self.topology, self.log)

    def restart(self) -> dict[str, Any]:
        """Power off and boot again: pristine (the overlays are discarded), same object,
        so every holder of it sees the new connection (new key, new PIDs)."""
        self.stop()
        return self.start()

    @property
    def is_up(self) -> bool:
        """What this session booted is still up (not died or taken down by somebody else)."""
        return self._booted and is_up(self.topology)

    @property
    def hosts(self) -> list[dict[str, str]]:
        """[{"name": ..., "address": ...}] for every node, the first first (several nodes only)."""
        return list(self.connection.get("hosts", []))

    def ssh(
        self, command: str, input: str | None = None, check: bool = True, timeout: float = 600, host: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command as root on the node `host` (address or hostname; None: the first)."""
        return ssh(self.topology, command, input=input, check=check, timeout=timeout, host=host)


S = TypeVar("S", bound=Session)


class SharedSession(Generic[S]):
    """One session per process, shared by several users (e.g. pytest fixtures): booted on
    first use (or again if somebody took it down), shut down when its last user releases."""

    def __init__(self, factory: Callable[[], S]) -> None:
        self._factory = factory
        self.current: S | None = None
        self.users = 0

    def acquire(self) -> S:
        """Pair every acquire() with release()."""
        if self.current is None or not self.current.is_up:
            if self.current is not None:
                self.current.stop()
            self.current = self._factory()
            self.current.start()
        self.users += 1
        return self.current

    def release(self) -> None:
        self.users = max(0, self.users - 1)
        if self.users == 0 and self.current is not None:
            self.current.stop()
            self.current = None
