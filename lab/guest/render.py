"""Each lab service's config files, rendered from lab/templates for one node's plan.

The same code runs on the host (lab.topology writes the plans, lab.cluster shows HAProxy's
config) and inside the containers (`python3 -m guest configure`): at image build, with the
single lab's plan (every service on loopback), and at every boot of a cluster node, with
that node's plan (its address added), before any service starts. Standard library only:
it runs with the image's /usr/bin/python3.

A placeholder that no plan value names is a secret (`${keystone_db_password}`): rendered
from the build's secrets file, or kept from the file already installed (`keep_secrets`, a
cluster node's boot), or else the file waits for the bootstrap stage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import string
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# Where the image keeps this package and the templates (PYTHONPATH for `-m guest`), and
# the plan its own configuration was rendered from.
GUEST_PATH = "/usr/local/lib/glance-pulumi-lab"
IMAGE_PLAN = f"{GUEST_PATH}/node.json"
LOOPBACK = "127.0.0.1"
SWIFT_STORAGE_SERVERS = ("account", "container", "object")
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


@dataclass(frozen=True)
class Balancer:
    """HAProxy on this node: its frontend and stats ports, Glance's servers behind it."""

    address: str
    port: int
    stats_port: int
    servers: tuple[tuple[str, str], ...]  # (name, address:port)


@dataclass(frozen=True)
class NodePlan:
    """What a node's configuration depends on."""

    hostname: str
    # The node's own address on the cluster's network; None: loopback only (the single lab).
    address: str | None
    subnet: str | None
    hosts: tuple[tuple[str, str], ...]  # (address, name) lines of /etc/hosts besides localhost
    ports: Mapping[str, int]
    balancer: Balancer | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "hostname": self.hostname,
                "address": self.address,
                "subnet": self.subnet,
                "hosts": self.hosts,
                "ports": dict(self.ports),
                "balancer": None if self.balancer is None else self.balancer.__dict__,
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> NodePlan:
        data: dict[str, Any] = json.loads(text)
        balancer = data["balancer"]
        return cls(
            hostname=data["hostname"],
            address=data["address"],
            subnet=data["subnet"],
            hosts=tuple((address, name) for address, name in data["hosts"]),
            ports=data["ports"],
            balancer=None
            if balancer is None
            else Balancer(
                balancer["address"],
                balancer["port"],
                balancer["stats_port"],
                tuple((name, address) for name, address in balancer["servers"]),
            ),
        )


@dataclass(frozen=True)
class ConfigTemplate:
    """lab/templates/<source> installed at <target>, with its owner and mode."""

    source: str
    target: str
    mode: int = 0o644
    group: str = "root"
    owner: str = "root"
    values: Mapping[str, str] = field(default_factory=dict)  # this file's own, beside the node's


def services(plan: NodePlan) -> dict[str, tuple[ConfigTemplate, ...]]:
    """Every config file of the node, by service, in the order they are configured."""
    storage = tuple(
        ConfigTemplate(
            "swift/storage-server.conf",
            f"/etc/swift/{server}-server.conf",
            values={"server": server, "bind_port": str(plan.ports[f"swift_{server}"])},
        )
        for server in SWIFT_STORAGE_SERVERS
    )
    return {
        "apt": (ConfigTemplate("apt/99lab-snapshot", "/etc/apt/apt.conf.d/99lab-snapshot"),),
        "system": (
            ConfigTemplate("system/hosts", "/etc/hosts"),
            ConfigTemplate("system/hostname", "/etc/hostname"),
            ConfigTemplate("system/lab-provision.service", "/etc/systemd/system/lab-provision.service"),
            ConfigTemplate("system/lab-cluster.service", "/etc/systemd/system/lab-cluster.service"),
        ),
        "sshd": (ConfigTemplate("sshd/50-lab.conf", "/etc/ssh/sshd_config.d/50-lab.conf"),),
        "mariadb": (ConfigTemplate("mariadb/99-lab.cnf", "/etc/mysql/mariadb.conf.d/99-lab.cnf"),),
        "postgresql": (
            ConfigTemplate("postgresql/lab.conf", "/etc/postgresql/15/main/conf.d/lab.conf"),
            ConfigTemplate(
                "postgresql/pg_hba.conf", "/etc/postgresql/15/main/pg_hba.conf", 0o640, "postgres", "postgres"
            ),
        ),
        "memcached": (ConfigTemplate("memcached/memcached.conf", "/etc/memcached.conf"),),
        "keystone": (
            ConfigTemplate("keystone/lab-uwsgi.ini", "/etc/keystone/lab-uwsgi.ini"),
            ConfigTemplate("keystone/keystone.service", "/etc/systemd/system/keystone.service"),
            ConfigTemplate("keystone/keystone.conf", "/etc/keystone/keystone.conf", 0o640, "keystone"),
        ),
        "swift": (
            ConfigTemplate("swift/swift.conf", "/etc/swift/swift.conf"),
            *storage,
            ConfigTemplate("swift/proxy-server.conf", "/etc/swift/proxy-server.conf", 0o640, "swift"),
        ),
        "rabbitmq": (
            ConfigTemplate("rabbitmq/rabbitmq-env.conf", "/etc/rabbitmq/rabbitmq-env.conf"),
            ConfigTemplate("rabbitmq/rabbitmq.conf", "/etc/rabbitmq/rabbitmq.conf"),
            ConfigTemplate("rabbitmq/epmd.socket.conf", "/etc/systemd/system/epmd.socket.d/lab.conf"),
            ConfigTemplate(
                "rabbitmq/rabbitmq-server.service.conf", "/etc/systemd/system/rabbitmq-server.service.d/lab.conf"
            ),
        ),
        "haproxy": (ConfigTemplate("haproxy/haproxy.cfg", "/etc/haproxy/haproxy.cfg"),) if plan.balancer else (),
    }


def node_values(plan: NodePlan) -> dict[str, str]:
    """The placeholders every template may use. Services bind loopback, which their own
    clients keep using, plus the node's address if it has one; the ones other nodes reach
    and that bind one address only (MariaDB, Keystone's uwsgi, the Swift proxy) bind all."""
    own = [LOOPBACK, *([plan.address] if plan.address else [])]
    values = {f"{name}_port": str(port) for name, port in plan.ports.items()}
    values.update(
        guest_path=GUEST_PATH,
        hostname=plan.hostname,
        host_names="".join(f"{address}\t{name}\n" for address, name in plan.hosts),
        loopback=LOOPBACK,
        service_address=plan.address or LOOPBACK,
        own_addresses=",".join(own),
        every_address="0.0.0.0" if plan.address else LOOPBACK,
        ssh_listen="\n".join(f"ListenAddress {address}" for address in own),
        amqp_listeners="\n".join(
            f"listeners.tcp.{i} = {address}:{plan.ports['rabbitmq']}" for i, address in enumerate(own, 1)
        ),
        subnet_hba_rules=f"host    all             all             {plan.subnet}            scram-sha-256\n"
        if plan.subnet
        else "",
    )
    if plan.balancer:
        values.update(
            balancer_address=plan.balancer.address,
            balancer_port=str(plan.balancer.port),
            balancer_stats_port=str(plan.balancer.stats_port),
            balancer_servers="\n".join(f"    server {name} {target} check" for name, target in plan.balancer.servers),
        )
    return values


def template_text(source: str) -> str:
    return (TEMPLATES / source).read_text()


def secret_names(template: ConfigTemplate, values: Mapping[str, str]) -> set[str]:
    return set(string.Template(template_text(template.source)).get_identifiers()) - set(values)


def render(template: ConfigTemplate, plan: NodePlan, secrets: Mapping[str, str] | None = None) -> str:
    """The file's text; KeyError if it needs a secret that `secrets` lacks."""
    values = {**node_values(plan), **template.values, **(secrets or {})}
    return string.Template(template_text(template.source)).substitute(values)


def installed_secrets(template: ConfigTemplate, names: set[str]) -> dict[str, str]:
    """The secrets an installed file holds, found where its template has their placeholders
    (a line's literal text around them must match); {} if it is not installed."""
    try:
        installed = Path(template.target).read_text()
    except FileNotFoundError:
        return {}
    found: dict[str, str] = {}
    for line in template_text(template.source).splitlines():
        parts = PLACEHOLDER.split(line)  # literal, name, literal, name, ..., literal
        if not names & set(parts[1::2]):
            continue
        pattern = "".join(
            re.escape(part) if i % 2 == 0 else (f"(?P<{part}>\\S+)" if part in names else ".*?")
            for i, part in enumerate(parts)
        )
        match = re.search(f"^{pattern}$", installed, re.MULTILINE)
        if match:
            found.update({name: value for name, value in match.groupdict().items() if value is not None})
    return found


def install(template: ConfigTemplate, text: str) -> bool:
    """Write the file (owner and mode from the start) unless it already has this text;
    returns whether it was written."""
    target = Path(template.target)
    if target.is_file() and target.read_text() == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.fchmod(fd, template.mode)
        shutil.chown(temporary, template.owner, template.group)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def configure(
    plan: NodePlan, only: tuple[str, ...] = (), secrets: Mapping[str, str] | None = None, keep_secrets: bool = False
) -> list[str]:
    """Render and install the config files of `only` these services (default: all);
    returns the paths written. A file that needs secrets neither given nor kept is skipped."""
    written = []
    values = node_values(plan)
    for service, templates in services(plan).items():
        if only and service not in only:
            continue
        for template in templates:
            names = secret_names(template, {**values, **template.values})
            known = dict(secrets or {})
            if names - set(known) and keep_secrets:
                known.update(installed_secrets(template, names))
            if names - set(known):
                continue
            if install(template, render(template, plan, known)):
                written.append(template.target)
    return written


def read_secrets(path: Path) -> dict[str, str]:
    """The build's secrets file (KEY=value lines) as template values (lower-case keys)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip().lower(): value.strip() for key, value in pairs}
