"""The two-controller lab (lab.cluster) for real: both containers, their own network, the
first controller's services reached from the second, HAProxy in front of :9292.

Nothing is mocked. Skips or fails like test_lab (lab.pytest_plugin.require_lab). The last
tests take the cluster down and check that nothing of it is left on the machine.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from lab import cluster, controller, notifications, nspawn
from lab.image import image_dir, read_secrets
from lab.paths import CLUSTER_BRIDGE, CLUSTER_LB_PORT, KEYSTONE_AUTH_URL, MACHINE_NAME, cluster_run_dir, run_dir
from lab.pytest_plugin import require_lab
from lab.session import amqp_answers, image_host_key

FIRST, SECOND = "10.77.0.11", "10.77.0.12"
LB = f"http://{FIRST}:{CLUSTER_LB_PORT}"


@pytest.fixture(scope="module", autouse=True)
def pristine(cluster_host: cluster.Cluster) -> cluster.Cluster:
    """These tests check the cluster as `cluster-up` leaves it: if another suite shares it
    (and deployed onto it), boot it again, pristine."""
    if cluster.shared.users > 1:
        cluster_host.restart()
    return cluster_host


@pytest.fixture(scope="module")
def conn(pristine: cluster.Cluster) -> dict[str, Any]:
    return pristine.connection


def _sh(c: cluster.Cluster, script: str, host: str | None = None) -> str:
    """A bash script on a controller, secrets inside it travel on stdin; returns stdout."""
    return c.ssh("bash -s", input="set -euo pipefail\n" + script, host=host).stdout


def _get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _listening(c: cluster.Cluster, host: str) -> set[str]:
    out = c.ssh("ss -H -ltn", host=host).stdout
    return {line.split()[3] for line in out.splitlines() if line.strip()}


def _backends(conn: dict[str, Any]) -> dict[str, str]:
    """HAProxy's view of Glance's servers: {server: status}, from the stats page's CSV."""
    status, body = _get(conn["load_balancer"]["stats"] + ";csv")
    assert status == 200
    rows = csv.DictReader(io.StringIO(body.decode().lstrip("# ")))
    servers = (r for r in rows if r["pxname"] == "glance_api" and r["svname"] not in ("FRONTEND", "BACKEND"))
    return {r["svname"]: r["status"] for r in servers}


# ---- what a deployment reads -------------------------------------------------------------


def test_connection_json(conn: dict[str, Any]) -> None:
    path = cluster.connection_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == conn
    key = conn["ssh"]["private_key_path"]
    host_key = image_host_key(image_dir())
    assert conn["ssh"] == {"host": FIRST, "port": 2222, "user": "root", "private_key_path": key, "host_key": host_key}
    assert conn["mysql"]["endpoint"] == f"{FIRST}:3306" and conn["mysql"]["admin_user"] == "labadmin"
    assert (conn["postgresql"]["host"], conn["postgresql"]["port"]) == (FIRST, 5432)
    assert conn["keystone"]["auth_url"] == f"http://{FIRST}:5000/v3"
    assert conn["keystone"]["region"] == "RegionOne"
    assert conn["memcached"] == f"{FIRST}:11211"
    assert conn["swift"] == {"url": f"http://{FIRST}:8080", "service_type": "object-store"}
    password = read_secrets(image_dir())["rabbitmq_password"]
    assert conn["rabbitmq"] == {
        "host": FIRST,
        "port": 5672,
        "user": "glance-notify",
        "password": password,
        "transport_url": f"rabbit://glance-notify:{password}@{FIRST}:5672/",
    }
    assert conn["hosts"] == [{"name": "controller", "address": FIRST}, {"name": "controller2", "address": SECOND}]
    assert conn["load_balancer"] == {"url": LB, "stats": f"http://{FIRST}:9201/"}
    assert set(conn["nspawn_pids"]) == {"controller", "controller2"}


def test_own_names_and_network_namespaces(conn: dict[str, Any]) -> None:
    """Apart from the single lab: other machine and cgroup names, no host networking."""
    host_net = os.readlink("/proc/self/ns/net")
    nets = set()
    for node in cluster.NODES:
        pid = conn["nspawn_pids"][node.name]
        assert nspawn.is_nspawn(pid, node.machine) and node.machine != MACHINE_NAME
        assert pid in nspawn.cgroup_pids(node.cgroup)
        leader = nspawn.container_leader(pid)
        assert leader is not None
        nets.add(os.readlink(f"/proc/{leader}/ns/net"))
        assert os.stat(f"/run/netns/{node.netns}").st_ino == os.stat(f"/proc/{leader}/ns/net").st_ino
    assert len(nets) == 2 and host_net not in nets
    assert cluster_run_dir() != run_dir()
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"


def test_both_controllers_answer_ssh_with_the_session_key(pristine: cluster.Cluster, conn: dict[str, Any]) -> None:
    public = Path(conn["ssh"]["private_key_path"] + ".pub").read_text().split()[1]
    names = []
    for host in conn["hosts"]:
        out = _sh(pristine, "hostname; cat /root/.ssh/authorized_keys; ip -4 -o addr show dev eth0", host["address"])
        lines = out.splitlines()
        names.append(lines[0])
        assert lines[0] == host["name"]
        assert lines[1].split()[1] == public
        assert f"inet {host['address']}/24" in lines[2]
        # ssh_argv pins the image's host key for both addresses (StrictHostKeyChecking=yes).
        assert "StrictHostKeyChecking=yes" in cluster.ssh_argv("true", host["address"])
        # Hostnames resolve to the cluster addresses on every controller.
        resolved = pristine.ssh("getent hosts controller controller2", host=host["address"]).stdout.split()
        assert resolved == [FIRST, "controller", SECOND, "controller2"]
    assert names == ["controller", "controller2"]
    assert pristine.ssh("hostname", host="controller2").stdout.strip() == "controller2"  # by name too
    with pytest.raises(cluster.LabError, match="no controller"):
        pristine.ssh("true", host="10.77.0.99")


def test_first_controller_serves_at_its_address(pristine: cluster.Cluster) -> None:
    listening = _listening(pristine, FIRST)
    expected = {
        f"{FIRST}:2222",
        "0.0.0.0:3306",
        f"{FIRST}:5432",
        f"{FIRST}:11211",
        "0.0.0.0:5000",
        "0.0.0.0:8080",
        f"{FIRST}:{CLUSTER_LB_PORT}",
        f"{FIRST}:9201",
        f"{FIRST}:5672",
        # loopback stays, for the services' own clients; the storage servers only there
        "127.0.0.1:2222",
        "127.0.0.1:5432",
        "127.0.0.1:11211",
        "127.0.0.1:6200",
        "127.0.0.1:6201",
        "127.0.0.1:6202",
        "127.0.0.1:5672",
        # RabbitMQ's Erlang port mapper and distribution (rabbitmqctl): loopback only
        "127.0.0.1:4369",
        "127.0.0.1:25672",
    }
    assert expected <= listening, sorted(listening)
    for port in (4369, 25672, 5672):
        assert {a for a in listening if a.rsplit(":", 1)[1] == str(port)} <= {f"127.0.0.1:{port}", f"{FIRST}:{port}"}
    assert f"{FIRST}:4369" not in listening and f"{FIRST}:25672" not in listening
    # The proxy config keeps its owner and mode through the rewrite (it holds a password).
    assert pristine.ssh("stat -c '%U:%G %a' /etc/swift/proxy-server.conf").stdout.split() == ["root:swift", "640"]
    assert pristine.ssh("systemctl is-active lab-cluster.service").stdout.strip() == "active"


def test_second_controller_runs_only_sshd(pristine: cluster.Cluster) -> None:
    units = cluster.masked_units(image_dir())
    assert {"mariadb.service", "keystone.service", "swift-proxy.service", "haproxy.service"} <= set(units)
    assert {"rabbitmq-server.service", "epmd.socket", "epmd.service"} <= set(units)
    show = pristine.ssh(f"systemctl show -p Id,UnitFileState,ActiveState {' '.join(units)}", host=SECOND).stdout
    states = [dict(line.split("=", 1) for line in block.splitlines()) for block in show.strip().split("\n\n")]
    assert len(states) == len(units)
    for unit in states:
        assert (unit["UnitFileState"], unit["ActiveState"]) == ("masked-runtime", "inactive"), unit
    assert _listening(pristine, SECOND) == {"127.0.0.1:2222", f"{SECOND}:2222"}
    running = pristine.ssh("systemctl list-units --type=service --state=running --plain --no-legend", host=SECOND)
    names = [line.split()[0] for line in running.stdout.splitlines() if line.strip()]
    assert "ssh.service" in names
    services = ("mariadb", "postgres", "memcached", "keystone", "swift", "haproxy", "rabbitmq", "epmd")
    assert not [n for n in names if n.startswith(services)]
    assert pristine.ssh("systemctl is-system-running", host=SECOND, check=False).stdout.strip() == "running"


# ---- the first controller's services, from the second ------------------------------------


def test_mariadb_admin_from_the_second_controller(pristine: cluster.Cluster, conn: dict[str, Any]) -> None:
    my = conn["mysql"]
    host, port = my["endpoint"].split(":")
    client = f"mysql --protocol=TCP -h {host} -P {port} -u {my['admin_user']} -N -B"
    name = f"clusterprobe_{secrets.token_hex(3)}"
    out = _sh(
        pristine,
        f"""
export MYSQL_PWD='{my["admin_password"]}'
{client} -e "SELECT CURRENT_USER(), @@hostname"
{client} -e "SHOW GRANTS"
# What a provider does for Glance on another host: database, user from anywhere, grant.
{client} -e "CREATE DATABASE {name}; CREATE USER '{name}'@'%' IDENTIFIED BY 'x';
  GRANT ALL PRIVILEGES ON {name}.* TO '{name}'@'%'; DROP USER '{name}'@'%'; DROP DATABASE {name};
  SELECT 'provider-ok'"
""",
        SECOND,
    )
    lines = out.splitlines()
    assert lines[0].split() == ["labadmin@10.77.0.%", "controller"]
    assert "GRANT ALL PRIVILEGES ON *.* TO" in out and "WITH GRANT OPTION" in out
    assert lines[-1] == "provider-ok"
    wrong = pristine.ssh("bash -s", input=f"MYSQL_PWD=wrong {client} -e 'SELECT 1'", check=False, host=SECOND)
    assert wrong.returncode != 0 and "Access denied" in wrong.stderr


def test_postgresql_admin_from_the_second_controller(pristine: cluster.Cluster, conn: dict[str, Any]) -> None:
    pg = conn["postgresql"]
    out = _sh(
        pristine,
        f"PGPASSWORD='{pg['admin_password']}' psql -h {pg['host']} -p {pg['port']} -U {pg['admin_user']} "
        "-d postgres -tAc 'SELECT inet_server_addr(), inet_client_addr()'",
        SECOND,
    )
    assert out.strip() == f"{FIRST}|{SECOND}"


def test_memcached_from_the_second_controller(pristine: cluster.Cluster, conn: dict[str, Any]) -> None:
    host, port = conn["memcached"].split(":")
    out = _sh(pristine, f"exec 3<>/dev/tcp/{host}/{port}; printf 'version\\r\\n' >&3; head -c 8 <&3", SECOND)
    assert out.startswith("VERSION ")


def test_notifications_from_the_second_controller(pristine: cluster.Cluster) -> None:
    """Glance on the second controller sends its notifications to the first's RabbitMQ, at
    the first's address: published from there, read back on the first."""
    assert amqp_answers(FIRST)
    notifications.delete_queue(pristine)
    events = [("image.create", {"id": "c2"}), ("image.upload", {"id": "c2"}), ("image.activate", {"id": "c2"})]
    assert notifications.publish(pristine, events, host=SECOND) == 3
    assert notifications.wait_for(pristine, [event for event, _ in events], timeout=10) == events
    notifications.delete_queue(pristine)


# Run with /usr/bin/python3 on the second controller, the password in the script (stdin):
# a token from the first controller's Keystone, the catalog it carries, Swift with it.
KEYSTONE_AND_SWIFT = """
import json, urllib.request
body = {"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": PASSWORD}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
request = urllib.request.Request(AUTH_URL + "/auth/tokens", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(request, timeout=60) as response:
    status, token, data = response.status, response.headers["X-Subject-Token"], json.load(response)
catalog = {s["type"]: sorted((e["interface"], e["url"]) for e in s["endpoints"]) for s in data["token"]["catalog"]}
with urllib.request.urlopen(SWIFT + "/healthcheck", timeout=30) as response:
    health = response.read().decode()
url = dict(catalog["object-store"])["public"]
head = urllib.request.Request(url, headers={"X-Auth-Token": token}, method="HEAD")
with urllib.request.urlopen(head, timeout=30) as response:
    account = response.status
print(json.dumps({"status": status, "project": data["token"]["project"]["id"], "catalog": catalog,
                  "health": health, "account": account}))
"""


def test_keystone_and_swift_from_the_second_controller(pristine: cluster.Cluster, conn: dict[str, Any]) -> None:
    ks = conn["keystone"]
    prelude = f"PASSWORD = {ks['admin_password']!r}\nAUTH_URL = {ks['auth_url']!r}\nSWIFT = {conn['swift']['url']!r}\n"
    out = pristine.ssh("/usr/bin/python3 -", input=prelude + KEYSTONE_AND_SWIFT, host=SECOND).stdout
    result = json.loads(out)
    assert result["status"] == 201
    interfaces = ("admin", "internal", "public")
    assert result["catalog"]["identity"] == [[i, f"http://{FIRST}:5000/v3/"] for i in interfaces]
    account = f"http://{FIRST}:8080/v1/AUTH_{result['project']}"
    assert result["catalog"]["object-store"] == [[i, account] for i in interfaces]
    assert result["health"] == "OK"
    assert result["account"] in (200, 204)


def test_keystone_catalog_names_the_first_controller(conn: dict[str, Any]) -> None:
    ks = conn["keystone"]
    token = controller.keystone_token(ks["admin_password"], auth_url=ks["auth_url"])
    request = urllib.request.Request(f"{ks['auth_url']}/endpoints", headers={"X-Auth-Token": token})
    with urllib.request.urlopen(request, timeout=30) as response:
        urls = sorted({e["url"] for e in json.load(response)["endpoints"]})
    assert urls == [f"http://{FIRST}:5000/v3/", f"http://{FIRST}:8080/v1/AUTH_%(project_id)s"]


# ---- HAProxy -------------------------------------------------------------------------------


def test_haproxy_runs_on_the_first_controller_only(pristine: cluster.Cluster, conn: dict[str, Any]) -> None:
    assert pristine.ssh("systemctl is-active haproxy", host=FIRST).stdout.strip() == "active"
    # Disabled in the image (the single lab does not run it); this session's command line
    # (systemd.wants=) pulls it in: a runtime-only enablement.
    assert pristine.ssh("systemctl is-enabled haproxy", host=FIRST, check=False).stdout.strip() == "enabled-runtime"
    config = pristine.ssh("cat /etc/haproxy/haproxy.cfg", host=FIRST).stdout
    assert config == cluster.haproxy_config()
    for line in ("option httpchk GET /healthcheck", "option redispatch", "retries 3", "balance roundrobin"):
        assert f"    {line}\n" in config
    assert f"server controller2 {SECOND}:9292 check" in config
    # Nothing serves Glance yet: both servers down, the frontend answers 503.
    assert _get(f"{LB}/healthcheck")[0] == 503
    assert _backends(conn) == {"controller": "DOWN", "controller2": "DOWN"}


def test_haproxy_routes_to_a_stub_on_the_second_controller(pristine: cluster.Cluster, conn: dict[str, Any]) -> None:
    """A stand-in for glance-api on controller2 only: python3 -m http.server on :9292
    serving a file named healthcheck. HAProxy marks it up and routes every request there."""
    pristine.ssh(
        "mkdir -p /tmp/stub && echo stub-on-controller2 > /tmp/stub/healthcheck && "
        "systemd-run --unit=glance-stub --property=WorkingDirectory=/tmp/stub "
        "/usr/bin/python3 -m http.server 9292 --bind 0.0.0.0",
        host=SECOND,
    )
    try:
        deadline = time.monotonic() + 20
        while _get(f"{LB}/healthcheck")[0] != 200:
            assert time.monotonic() < deadline, f"HAProxy never routed to the stub: {_backends(conn)}"
            time.sleep(0.2)
        for _ in range(6):  # roundrobin, but the first controller is down: always the stub
            assert _get(f"{LB}/healthcheck") == (200, b"stub-on-controller2\n")
        assert _backends(conn) == {"controller": "DOWN", "controller2": "UP"}
    finally:
        pristine.ssh("systemctl stop glance-stub", host=SECOND)
    deadline = time.monotonic() + 20
    while _get(f"{LB}/healthcheck")[0] != 503:
        assert time.monotonic() < deadline, f"HAProxy kept routing to a stopped stub: {_backends(conn)}"
        time.sleep(0.2)


# ---- Glance's packages on the second controller -------------------------------------------


def test_glance_api_installable_offline_on_the_second_controller(pristine: cluster.Cluster) -> None:
    """The image's prefetched archives suffice there too (no route beyond the bridge).
    A dry run: a real install takes 60-100 s (done once by hand, see lab/README.md)."""
    uris = pristine.ssh("apt-get install -y --print-uris -qq glance-api", host=SECOND).stdout
    assert uris.strip() == "", f"would download:\n{uris[:2000]}"
    simulated = pristine.ssh("apt-get install -y -s --no-download glance-api", host=SECOND).stdout
    assert "Inst glance-api " in simulated and "Conf glance-api " in simulated
    # And there is no way out: nothing routes beyond the bridge.
    route = pristine.ssh("ip -4 route show default", host=SECOND).stdout
    assert route.strip() == ""


# ---- beside the single lab ------------------------------------------------------------------


def test_runs_beside_the_single_lab(pristine: cluster.Cluster, conn: dict[str, Any], lab_host: controller.Lab) -> None:
    """Both up at once: the single lab on the host's loopback, the cluster on its bridge,
    each with its own Keystone catalog and key."""
    assert lab_host.is_up and pristine.is_up
    assert lab_host.ssh("hostname").stdout.strip() == "controller"
    assert pristine.ssh("hostname").stdout.strip() == "controller"
    assert lab_host.connection["ssh"]["private_key_path"] != conn["ssh"]["private_key_path"]
    single = controller.keystone_token(lab_host.connection["keystone"]["admin_password"])
    request = urllib.request.Request(f"{KEYSTONE_AUTH_URL}/endpoints", headers={"X-Auth-Token": single})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert all("//127.0.0.1:" in e["url"] for e in json.load(response)["endpoints"])
    assert pristine.ssh("systemctl is-active haproxy").stdout.strip() == "active"
    assert lab_host.ssh("systemctl is-active haproxy", check=False).stdout.strip() == "inactive"
    assert lab_host.ssh("systemctl is-enabled haproxy", check=False).stdout.strip() == "disabled"
    assert lab_host.ssh("systemctl is-active lab-cluster", check=False).stdout.strip() == "inactive"


# ---- down ----------------------------------------------------------------------------------


def _network_names() -> str:
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return links + netns


def test_down_removes_everything(pristine: cluster.Cluster, conn: dict[str, Any]) -> None:
    pids = {pid for node in cluster.NODES for pid in nspawn.cgroup_pids(node.cgroup)}
    assert set(conn["nspawn_pids"].values()) <= pids
    assert cluster.shutdown() == "terminated"
    assert not any(nspawn.pid_alive(pid) for pid in pids)
    assert cluster.leftovers() == {}
    assert "glpl-" not in _network_names() and CLUSTER_BRIDGE not in _network_names()
    assert not cluster_run_dir().exists() and not cluster.is_up()
    assert cluster.status() == {"up": False, "image": str(image_dir()), "image_built": True}
    assert cluster.shutdown() == "not running"  # idempotent


def test_next_run_cleans_up_after_a_killed_one() -> None:
    """SIGKILL on both nspawns leaves both containers running in their namespaces; the next
    Cluster() cleans that up first, and its __exit__ tears down after an error too."""
    require_lab()
    first = cluster.boot()
    for pid in first["nspawn_pids"].values():
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(nspawn.pid_alive(pid) for pid in first["nspawn_pids"].values()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert not cluster.is_up()
    left = cluster.status()["leftovers"]
    assert left["processes"] and left["netns"] and CLUSTER_BRIDGE in left["links"], left
    with pytest.raises(RuntimeError, match="inside the with block"), cluster.Cluster() as again:
        assert again.is_up and again.connection["nspawn_pids"] != first["nspawn_pids"]
        assert again.ssh("hostname", host=SECOND).stdout.strip() == "controller2"
        raise RuntimeError("inside the with block")
    assert cluster.leftovers() == {}
    assert "glpl-" not in _network_names()
