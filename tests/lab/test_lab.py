"""The lab for real: boots the controller container and checks what deployments rely on.

Nothing is mocked. Outside CI the module skips (with the reason) when not root or
without systemd-nspawn; with CI=true those are failures (see lab.pytest_plugin).
The last tests take the lab down and check that nothing is left.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any

import pytest

from lab import controller, notifications, nspawn
from lab.image import image_dir, read_secrets
from lab.paths import CGROUP_NAME, KEYSTONE_AUTH_URL, LOOPBACK, MACHINE_NAME, PORTS, SWIFT_URL, run_dir
from lab.pytest_plugin import require_lab
from lab.session import amqp_answers, image_host_key

PREFETCHED = ("glance-api", "python3-pymysql", "python3-psycopg2")
SERVICE_PORTS = {name: port for name, port in PORTS.items() if name != "glance"}
SWIFT_UNITS = ("swift-proxy", "swift-account", "swift-container", "swift-object")
SWIFT_ENDPOINT = f"{SWIFT_URL}/v1/AUTH_%(project_id)s"


@pytest.fixture(scope="module", autouse=True)
def pristine(lab_host: controller.Lab) -> controller.Lab:
    """These tests check the lab as `up` leaves it. If another suite in this pytest run
    shares the lab (and deployed onto it), reboot it: the overlay makes that pristine."""
    if controller.shared.users > 1:
        lab_host.restart()
    return lab_host


@pytest.fixture(scope="module")
def conn(pristine: controller.Lab) -> dict[str, Any]:
    return pristine.connection


def _sh(lab_host: controller.Lab, script: str) -> str:
    """Run a bash script in the lab (secrets go on stdin, not argv); return stdout."""
    return lab_host.ssh("bash -s", input="set -euo pipefail\n" + script).stdout


def _keystone_get(path: str, token: str) -> Any:
    request = urllib.request.Request(f"{KEYSTONE_AUTH_URL}{path}", headers={"X-Auth-Token": token})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.load(response)


def _http(
    method: str, url: str, token: str | None = None, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, Message]:
    """One HTTP request; (status, body, headers) also for 4xx/5xx answers."""
    all_headers = {**({"X-Auth-Token": token} if token else {}), **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


def _keystone(method: str, path: str, token: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    status, raw, _ = _http(method, f"{KEYSTONE_AUTH_URL}{path}", token, data, {"Content-Type": "application/json"})
    assert 200 <= status < 300, f"{method} {path}: HTTP {status} {raw[:500]!r}"
    return json.loads(raw) if raw else None


def _login(user: str, password: str, project: str) -> tuple[str, dict[str, Any]]:
    """A project-scoped token and its body (project, roles, catalog)."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }
    }
    status, raw, headers = _http(
        "POST",
        f"{KEYSTONE_AUTH_URL}/auth/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, f"login {user}@{project}: HTTP {status} {raw[:500]!r}"
    return str(headers["X-Subject-Token"]), json.loads(raw)["token"]


def _object_store_url(token_body: dict[str, Any], region: str) -> str:
    """The public object-store endpoint of the token's catalog, as a client finds it."""
    urls = [
        endpoint["url"]
        for service in token_body["catalog"]
        if service["type"] == "object-store"
        for endpoint in service["endpoints"]
        if endpoint["interface"] == "public" and endpoint["region_id"] == region
    ]
    assert len(urls) == 1, token_body["catalog"]
    return str(urls[0])


# ---- the running lab -------------------------------------------------------------------


def test_systemd_is_running(lab_host: controller.Lab) -> None:
    state = lab_host.ssh("systemctl is-system-running", check=False).stdout.strip()
    failed = lab_host.ssh("systemctl --failed --plain --no-legend", check=False).stdout
    assert state == "running", f"system state {state}; failed units:\n{failed}"
    assert lab_host.ssh("cat /proc/1/comm").stdout.strip() == "systemd"


def test_root_is_a_pristine_overlay(lab_host: controller.Lab) -> None:
    assert lab_host.ssh("findmnt -no FSTYPE /").stdout.strip() == "overlay"


def test_services_are_active(lab_host: controller.Lab) -> None:
    units = "ssh mariadb postgresql@15-main memcached keystone rabbitmq-server epmd.socket " + " ".join(SWIFT_UNITS)
    out = lab_host.ssh(f"systemctl is-active {units}", check=False).stdout.split()
    assert out == ["active"] * len(units.split()), dict(zip(units.split(), out, strict=False))


def test_ssh_is_key_only_root_on_loopback(lab_host: controller.Lab, conn: dict[str, Any]) -> None:
    assert lab_host.ssh("id -u").stdout.strip() == "0"
    effective = lab_host.ssh("sshd -T").stdout.splitlines()
    for wanted in (
        "port 2222",
        "listenaddress 127.0.0.1:2222",
        "passwordauthentication no",
        "permitrootlogin without-password",
    ):
        assert wanted in effective, f"sshd -T lacks {wanted!r}"
    key = conn["ssh"]["private_key_path"]
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    # A key that is not the session's is refused.
    other = run_dir() / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    refused = subprocess.run(controller.ssh_argv("true", other), capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0


def test_services_listen_on_loopback_only(lab_host: controller.Lab) -> None:
    listeners = lab_host.ssh("ss -ltnH").stdout.split("\n")
    local = [line.split()[3] for line in listeners if line.strip()]
    for name, port in SERVICE_PORTS.items():
        bound = [addr for addr in local if addr.rsplit(":", 1)[1] == str(port)]
        assert bound == [f"{LOOPBACK}:{port}"], f"{name}: {bound}"


def test_connection_json(conn: dict[str, Any]) -> None:
    path = controller.connection_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    on_disk = json.loads(path.read_text())
    assert on_disk == conn
    assert conn["ssh"] == {
        "host": "127.0.0.1",
        "port": 2222,
        "user": "root",
        "private_key_path": conn["ssh"]["private_key_path"],
        "host_key": image_host_key(image_dir()),
    }
    assert conn["mysql"]["endpoint"] == "127.0.0.1:3306"
    assert conn["postgresql"]["host"] == "127.0.0.1" and conn["postgresql"]["port"] == 5432
    assert conn["postgresql"]["admin_user"] == "postgres"
    assert conn["postgresql"]["hba_path"] == "/etc/postgresql/15/main/pg_hba.conf"
    assert conn["keystone"]["auth_url"] == "http://127.0.0.1:5000/v3"
    assert conn["keystone"]["region"] == "RegionOne"
    assert conn["memcached"] == "127.0.0.1:11211"
    assert conn["swift"] == {"url": "http://127.0.0.1:8080", "service_type": "object-store"}
    password = read_secrets(image_dir())["rabbitmq_password"]
    assert conn["rabbitmq"] == {
        "host": "127.0.0.1",
        "port": 5672,
        "user": "glance-notify",
        "password": password,
        "transport_url": f"rabbit://glance-notify:{password}@127.0.0.1:5672/",
    }
    assert nspawn.is_nspawn(conn["nspawn_pid"], MACHINE_NAME)


def test_second_up_is_refused(lab_host: controller.Lab) -> None:
    with pytest.raises(controller.LabError, match="already up"):
        controller.boot()
    assert lab_host.is_up


# ---- databases: the admin accounts the Pulumi providers use -------------------------------


def test_mariadb_admin_over_tcp(lab_host: controller.Lab, conn: dict[str, Any]) -> None:
    my = conn["mysql"]
    host, port = my["endpoint"].split(":")
    client = f"mysql --protocol=TCP -h {host} -P {port} -u {my['admin_user']} -N -B"
    out = _sh(
        lab_host,
        f"""
export MYSQL_PWD='{my["admin_password"]}'
{client} -e "SHOW GRANTS"
# What a provider does: database, user from 127.0.0.1, grant; then clean up.
{client} -e "CREATE DATABASE labprobe; CREATE USER 'labprobe'@'127.0.0.1' IDENTIFIED BY 'x';
  GRANT ALL PRIVILEGES ON labprobe.* TO 'labprobe'@'127.0.0.1';
  DROP USER 'labprobe'@'127.0.0.1'; DROP DATABASE labprobe; SELECT 'provider-ok'"
""",
    )
    assert "GRANT ALL PRIVILEGES ON *.* TO" in out and "WITH GRANT OPTION" in out, out
    assert "provider-ok" in out
    wrong = lab_host.ssh("bash -s", check=False, input=f"MYSQL_PWD=wrong {client} -e 'SELECT 1'")
    assert wrong.returncode != 0 and "Access denied" in wrong.stderr


def test_postgresql_admin_over_tcp(lab_host: controller.Lab, conn: dict[str, Any]) -> None:
    pg = conn["postgresql"]
    client = f"psql -h {pg['host']} -p {pg['port']} -U {pg['admin_user']} -d postgres -tA"
    out = _sh(
        lab_host,
        f"""
export PGPASSWORD='{pg["admin_password"]}'
{client} -c "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
{client} -c "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'postgres'"
{client} -c "SHOW server_version_num"
""",
    ).split()
    assert out[0] == "postgres|t"
    assert out[1] == "SCRAM-SHA-256$"
    assert out[2].startswith("15")
    wrong = lab_host.ssh("bash -s", check=False, input=f"PGPASSWORD=wrong {client} -c 'SELECT 1'")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr


@pytest.mark.skipif(shutil.which("psql") is None, reason="no psql client on the host")
def test_postgresql_admin_from_host_client(conn: dict[str, Any]) -> None:
    pg = conn["postgresql"]
    env = {**os.environ, "PGPASSWORD": pg["admin_password"], "PGCONNECT_TIMEOUT": "10"}
    result = subprocess.run(
        ["psql", "-h", pg["host"], "-p", str(pg["port"]), "-U", "postgres", "-d", "postgres", "-tAc", "SELECT 1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "1", result.stderr


def test_memcached_answers(conn: dict[str, Any]) -> None:
    host, port = conn["memcached"].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"version\r\n")
        assert sock.recv(64).startswith(b"VERSION ")


# ---- keystone --------------------------------------------------------------------------


def test_keystone_token_project_region_roles(conn: dict[str, Any]) -> None:
    ks = conn["keystone"]
    token = controller.keystone_token(ks["admin_password"], ks["admin_user"], ks["admin_project"])
    projects = _keystone_get("/projects?name=service", token)["projects"]
    assert [p["name"] for p in projects] == ["service"]
    region = _keystone_get(f"/regions/{ks['region']}", token)["region"]
    assert region["id"] == "RegionOne"
    roles = {r["name"] for r in _keystone_get("/roles", token)["roles"]}
    assert {"admin", "member", "reader"} <= roles
    with pytest.raises(controller.LabError, match="HTTP 401"):
        controller.keystone_token("wrong-password")


def test_openstack_client_in_the_lab(lab_host: controller.Lab, conn: dict[str, Any]) -> None:
    ks = conn["keystone"]
    out = _sh(
        lab_host,
        f"""
export OS_AUTH_URL={ks["auth_url"]} OS_IDENTITY_API_VERSION=3 OS_USERNAME={ks["admin_user"]}
export OS_PASSWORD='{ks["admin_password"]}' OS_PROJECT_NAME={ks["admin_project"]}
export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
openstack region list -f value -c Region
""",
    )
    assert out.split() == ["RegionOne"]


# ---- swift -------------------------------------------------------------------------------


def test_only_the_four_swift_servers_run(lab_host: controller.Lab) -> None:
    """Auditors, replicators, updaters etc. are disabled (one replica, one device)."""
    out = lab_host.ssh("systemctl list-units --type=service --state=active --plain --no-legend 'swift*'").stdout
    assert sorted(line.split()[0] for line in out.splitlines() if line.strip()) == sorted(
        f"{unit}.service" for unit in SWIFT_UNITS
    )
    assert lab_host.ssh("systemctl is-enabled rsyslog", check=False).stdout.strip() == "disabled"
    for name in ("swift", "swift_account", "swift_container", "swift_object"):
        with urllib.request.urlopen(f"http://{LOOPBACK}:{PORTS[name]}/healthcheck", timeout=10) as response:
            assert response.read() == b"OK", name


def test_swift_password_stays_in_the_proxy_config(lab_host: controller.Lab, conn: dict[str, Any]) -> None:
    password = read_secrets(image_dir())["swift_service_password"]
    conf = "/etc/swift/proxy-server.conf"
    assert lab_host.ssh(f"stat -c '%U:%G %a' {conf}").stdout.split() == ["root:swift", "640"]
    # grep -f -: the pattern comes on stdin, not in argv.
    assert lab_host.ssh(f"grep -cxF -f - {conf}", input=f"password = {password}\n").stdout.strip() == "1"
    assert password not in lab_host.ssh("ps -eo args").stdout
    assert password not in json.dumps(conn)


def test_swift_in_keystone_catalog(conn: dict[str, Any]) -> None:
    ks = conn["keystone"]
    token, body = _login(ks["admin_user"], ks["admin_password"], ks["admin_project"])
    services = _keystone_get("/services?type=object-store", token)["services"]
    assert [(s["name"], s["enabled"]) for s in services] == [("swift", True)]
    endpoints = _keystone_get(f"/endpoints?service_id={services[0]['id']}", token)["endpoints"]
    assert sorted((e["interface"], e["region_id"], e["url"]) for e in endpoints) == [
        (interface, "RegionOne", SWIFT_ENDPOINT) for interface in ("admin", "internal", "public")
    ]
    users = _keystone_get("/users?name=swift", token)["users"]
    assert len(users) == 1
    assignments = _keystone_get(f"/role_assignments?user.id={users[0]['id']}&include_names", token)["role_assignments"]
    assert [(a["role"]["name"], a["scope"]["project"]["name"]) for a in assignments] == [("admin", "service")]
    # The catalog a client gets with its token: the project's own account.
    assert _object_store_url(body, ks["region"]) == f"{SWIFT_URL}/v1/AUTH_{body['project']['id']}"


@pytest.fixture
def service_member(conn: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """A throwaway user with the member role on project `service` (the admin user has
    no role there); deleted afterwards."""
    ks = conn["keystone"]
    token = controller.keystone_token(ks["admin_password"], ks["admin_user"], ks["admin_project"])
    name, password = f"lab-swift-probe-{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    project = _keystone_get("/projects?name=service", token)["projects"][0]["id"]
    member = _keystone_get("/roles?name=member", token)["roles"][0]["id"]
    user = _keystone("POST", "/users", token, {"user": {"name": name, "domain_id": "default", "password": password}})
    user_id = user["user"]["id"]
    try:
        _keystone("PUT", f"/projects/{project}/users/{user_id}/roles/{member}", token)
        yield name, password
    finally:
        _keystone("DELETE", f"/users/{user_id}", token)
    assert _keystone_get(f"/users?name={name}", token)["users"] == []


# Run as root in the lab: the object's metadata, from the xattrs the object server wrote
# (a pickled dict, split over user.swift.metadata, user.swift.metadata1, ...).
READ_SWIFT_METADATA = """
import json, os, pickle, sys
chunks, index = [], 0
while True:
    try:
        chunks.append(os.getxattr(sys.argv[1], "user.swift.metadata" + (str(index) if index else "")))
    except OSError:
        break
    index += 1
meta = pickle.loads(b"".join(chunks), encoding="bytes")
text = lambda v: v.decode() if isinstance(v, bytes) else v
print(json.dumps({text(k): text(v) for k, v in meta.items()}))
"""


@pytest.mark.parametrize("project", ["admin", "service"])
def test_swift_object_round_trip(
    lab_host: controller.Lab, conn: dict[str, Any], project: str, request: pytest.FixtureRequest
) -> None:
    """Keystone token -> catalog -> container, object PUT/GET -> the bytes on disk under
    /srv/node/d1 (the session's tmpfs overlay, with xattrs) -> delete."""
    ks = conn["keystone"]
    if project == "admin":
        user, password = ks["admin_user"], ks["admin_password"]
    else:
        user, password = request.getfixturevalue("service_member")
    token, body = _login(user, password, project)
    account = _object_store_url(body, ks["region"])
    assert account == f"{conn['swift']['url']}/v1/AUTH_{body['project']['id']}"

    container = f"lab-probe-{secrets.token_hex(4)}"
    data = os.urandom(100_000) + f"{project} {container}".encode()
    sha = hashlib.sha256(data).hexdigest()
    assert _http("PUT", f"{account}/{container}", token, b"")[0] in (201, 202)
    try:
        status, _, headers = _http("PUT", f"{account}/{container}/blob", token, data)
        assert status == 201
        assert headers["Etag"] == hashlib.md5(data).hexdigest()  # Swift's ETag is the MD5
        status, got, _ = _http("GET", f"{account}/{container}/blob", token)
        assert status == 200 and got == data
        status, raw, _ = _http("GET", f"{account}/{container}?format=json", token)
        assert [(o["name"], o["bytes"]) for o in json.loads(raw)] == [("blob", len(data))]
        # Without a token, or with another project's token, nothing is readable.
        assert _http("GET", f"{account}/{container}/blob")[0] == 401
        if project == "service":
            admin_token = controller.keystone_token(ks["admin_password"], ks["admin_user"], ks["admin_project"])
            assert _http("GET", f"{account}/{container}/blob", admin_token)[0] == 403

        on_disk = lab_host.ssh("find /srv/node/d1/objects -type f -name '*.data' -exec sha256sum {} +").stdout
        paths = [line.split()[1] for line in on_disk.splitlines() if line.split()[0] == sha]
        assert len(paths) == 1, on_disk
        meta = json.loads(lab_host.ssh(f"/usr/bin/python3 - {paths[0]}", input=READ_SWIFT_METADATA).stdout)
        assert meta["name"] == f"/AUTH_{body['project']['id']}/{container}/blob"
        assert meta["Content-Length"] == str(len(data))
        assert lab_host.ssh(f"findmnt -no FSTYPE --target {paths[0]}").stdout.strip() == "overlay"

        assert _http("DELETE", f"{account}/{container}/blob", token)[0] == 204
        assert _http("GET", f"{account}/{container}/blob", token)[0] == 404
        assert lab_host.ssh(f"test -e {paths[0]}", check=False).returncode == 1  # a .ts tombstone now
    finally:
        _http("DELETE", f"{account}/{container}/blob", token)
        assert _http("DELETE", f"{account}/{container}", token)[0] in (204, 404)
    assert _http("HEAD", f"{account}/{container}", token)[0] == 404


# ---- rabbitmq: Glance's notifications -------------------------------------------------

GLANCE_EVENTS = ("image.create", "image.upload", "image.activate")


@dataclass
class _Rabbit:
    """The lab as lab.notifications sees it, with other RabbitMQ settings (a wrong password)."""

    lab: controller.Lab
    connection: dict[str, Any]

    def ssh(
        self, command: str, *, input: str | None = None, timeout: float = 600, host: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.lab.ssh(command, input=input, timeout=timeout, host=host)


def _rabbitmqctl_json(lab_host: controller.Lab, args: str) -> Any:
    return json.loads(lab_host.ssh(f"rabbitmqctl -q {args} --formatter json").stdout)


def _image_events(image_id: str) -> list[tuple[str, dict[str, Any]]]:
    """What Glance sends for a created, uploaded image (the payloads trimmed)."""
    return [
        ("image.create", {"id": image_id, "status": "queued", "name": "cirros"}),
        ("image.upload", {"id": image_id, "status": "active", "size": 16, "checksum": "x" * 32}),
        ("image.activate", {"id": image_id, "status": "active", "name": "cirros"}),
    ]


def test_rabbitmq_is_up_with_the_glance_user_only(lab_host: controller.Lab) -> None:
    assert amqp_answers(LOOPBACK)
    assert lab_host.ssh("systemctl is-enabled rabbitmq-server").stdout.strip() == "enabled"
    users = _rabbitmqctl_json(lab_host, "list_users")
    assert [user["user"] for user in users] == ["glance-notify"], users  # no guest
    permissions = _rabbitmqctl_json(lab_host, "list_permissions -p /")
    assert permissions == [{"user": "glance-notify", "configure": ".*", "write": ".*", "read": ".*"}]
    node = lab_host.ssh("rabbitmqctl -q eval 'node().'").stdout.strip()
    assert node == "rabbit@localhost"
    limit = lab_host.ssh("rabbitmqctl -q eval 'vm_memory_monitor:get_memory_limit().'").stdout.strip()
    assert int(limit) == 512 * 2**20


def test_rabbitmq_refuses_a_wrong_password(lab_host: controller.Lab, conn: dict[str, Any]) -> None:
    for user, password in ((conn["rabbitmq"]["user"], "wrong"), ("guest", "guest")):
        other = _Rabbit(lab_host, {**conn, "rabbitmq": {**conn["rabbitmq"], "user": user, "password": password}})
        with pytest.raises(controller.LabError, match="ACCESS_REFUSED"):
            notifications.purge(other)


def test_published_notifications_come_back(lab_host: controller.Lab) -> None:
    """The glance user declares the exchange, queue and binding as oslo.messaging does and
    publishes envelopes like Glance's; the consumer reads them back in order, then the queue
    is empty; purge and delete reset it."""
    notifications.delete_queue(lab_host)  # whatever an earlier test left
    assert notifications.drain(lab_host) == []  # no queue: nothing, no error
    events = _image_events(secrets.token_hex(16))
    assert notifications.publish(lab_host, events) == 3

    exchanges = _rabbitmqctl_json(lab_host, "list_exchanges -p / name type durable auto_delete internal arguments")
    assert {
        "name": "glance",
        "type": "topic",
        "durable": False,
        "auto_delete": False,
        "internal": False,
        "arguments": [],
    } in exchanges, exchanges
    queues = _rabbitmqctl_json(lab_host, "list_queues -p / name durable auto_delete exclusive arguments messages")
    assert [q for q in queues if q["name"] == "notifications.info"] == [
        {
            "name": "notifications.info",
            "durable": False,
            "auto_delete": False,
            "exclusive": False,
            "arguments": [],
            "messages": 3,
        }
    ], queues
    bindings = _rabbitmqctl_json(lab_host, "list_bindings -p / source_name destination_name routing_key")
    assert {
        "source_name": "glance",
        "destination_name": "notifications.info",
        "routing_key": "notifications.info",
    } in bindings, bindings

    assert notifications.wait_for(lab_host, GLANCE_EVENTS, timeout=10) == events
    assert notifications.drain(lab_host) == []  # taken off the queue (acknowledged)

    assert notifications.publish(lab_host, events[:2]) == 2
    assert notifications.purge(lab_host) == 2
    assert notifications.drain(lab_host) == []
    assert notifications.delete_queue(lab_host) is True
    assert notifications.delete_queue(lab_host) is False
    assert notifications.purge(lab_host) == 0  # a missing queue is empty too


def test_wait_for_names_what_did_not_come(lab_host: controller.Lab) -> None:
    notifications.purge(lab_host)
    started = time.monotonic()
    with pytest.raises(controller.LabError, match=r"no \['image.activate'\] in notifications.info within 2s"):
        notifications.wait_for(lab_host, ["image.activate"], timeout=2)
    assert 2 <= time.monotonic() - started < 30
    notifications.publish(lab_host, [("image.delete", {"id": "x"})])
    with pytest.raises(controller.LabError, match=r"got \['image.delete'\]"):
        notifications.wait_for(lab_host, ["image.activate"], timeout=1)


def test_rabbitmq_password_is_in_no_argv(lab_host: controller.Lab, conn: dict[str, Any]) -> None:
    """Sample every process's argv on the controller while the client publishes and waits;
    the sampler must have seen the client itself (`/usr/bin/python3 -`)."""
    password = conn["rabbitmq"]["password"]
    seen: set[str] = set()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.update(lab_host.ssh("ps -eo args --no-headers", check=False).stdout.splitlines())
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        notifications.publish(lab_host, _image_events("argv-probe"))
        notifications.drain(lab_host, ["never-sent"], timeout=3)
    finally:
        stop.set()
        sampler.join()
    assert "/usr/bin/python3 -" in seen
    assert any("beam" in args and "rabbit" in args for args in seen)
    assert not [args for args in seen if password in args]
    # Nor in the environment of RabbitMQ's processes, nor in any file under /etc.
    assert lab_host.ssh("grep -rlF -f - /etc /proc/*/environ", input=password + "\n", check=False).stdout == ""


# Runs in the lab with /usr/bin/python3: oslo.messaging's own Notifier (keystone's dependency,
# installed in the image), configured as Glance configures it, sends the three events.
# TRANSPORT_URL and EVENTS are prepended (on stdin).
OSLO_NOTIFIER = """
from oslo_config import cfg
import oslo_messaging

oslo_messaging.set_transport_defaults("glance")  # glance/notifier.py: the exchange
cfg.CONF([], project="glance", default_config_files=[])
transport = oslo_messaging.get_notification_transport(cfg.CONF, url=TRANSPORT_URL)
notifier = oslo_messaging.Notifier(
    transport, publisher_id="image.controller", driver="messagingv2", topics=["notifications"], retry=3
)
for event_type, payload in EVENTS:
    notifier.info({}, event_type, payload)
transport.cleanup()
"""


@pytest.mark.parametrize("declared_first", [False, True], ids=["oslo-declares", "lab-declared-first"])
def test_oslo_messaging_notifier_reaches_the_consumer(
    lab_host: controller.Lab, conn: dict[str, Any], declared_first: bool
) -> None:
    """The connection settings' transport_url, as Glance's notifier uses it: what it sends
    the consumer receives, whether the queue is oslo.messaging's own or the lab declared it
    first (declare_queue must match oslo.messaging's declaration exactly, or the broker
    would refuse oslo.messaging's)."""
    notifications.delete_queue(lab_host)
    if declared_first:
        notifications.declare_queue(lab_host)
    events = _image_events(secrets.token_hex(16))
    prelude = f"TRANSPORT_URL = {conn['rabbitmq']['transport_url']!r}\nEVENTS = {events!r}\n"
    lab_host.ssh("/usr/bin/python3 -", input=prelude + OSLO_NOTIFIER, timeout=120)
    assert notifications.wait_for(lab_host, GLANCE_EVENTS, timeout=30) == events
    notifications.delete_queue(lab_host)


# ---- glance packages: pre-downloaded, not installed ---------------------------------------


def test_glance_packages_need_no_download(lab_host: controller.Lab) -> None:
    packages = " ".join(PREFETCHED)
    # --print-uris lists only archives that would have to be fetched: none.
    uris = lab_host.ssh(f"apt-get install -y --print-uris -qq {packages}").stdout
    assert uris.strip() == "", f"would download:\n{uris[:2000]}"
    simulated = lab_host.ssh("apt-get install -s glance-api").stdout
    assert "Inst glance-api " in simulated
    assert lab_host.ssh("dpkg-query -W -f='${Status}' glance-api", check=False).stdout.strip() in (
        "",
        "unknown ok not-installed",
    ), "glance-api must be left for the deployment to install"


# ---- down --------------------------------------------------------------------------------


def test_down_stops_everything(lab_host: controller.Lab, conn: dict[str, Any]) -> None:
    pid = conn["nspawn_pid"]
    pids_before = nspawn.cgroup_pids(CGROUP_NAME)
    assert pid in pids_before
    assert controller.shutdown() == "terminated"
    assert not nspawn.pid_alive(pid)
    assert not any(nspawn.pid_alive(p) for p in pids_before)
    assert controller.busy_ports() == {}
    assert not run_dir().exists()
    assert all(not d.exists() for d in nspawn.cgroup_dirs(CGROUP_NAME))
    assert not controller.is_up()
    assert controller.shutdown() == "not running"  # idempotent


def test_up_refuses_busy_port() -> None:
    require_lab()
    assert not controller.is_up()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of the last lab
        squatter.bind((LOOPBACK, PORTS["ssh"]))
        squatter.listen()
        with pytest.raises(controller.LabError, match=r"already in use: ssh 127\.0\.0\.1:2222"):
            controller.boot()
    assert not controller.is_up() and not run_dir().exists()


def test_down_recovers_a_container_whose_nspawn_was_killed() -> None:
    """SIGKILL on nspawn leaves the container running (measured); `down` must stop it."""
    require_lab()
    connection = controller.boot()
    pid = connection["nspawn_pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while nspawn.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not controller.is_up()
    assert controller.status()["leftovers"]["processes"], "expected the container to outlive nspawn"
    assert controller.shutdown() == "orphan stopped"
    assert nspawn.cgroup_pids(CGROUP_NAME) == set()
    assert controller.busy_ports() == {}
    assert not run_dir().exists()
