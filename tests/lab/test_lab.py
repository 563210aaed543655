"""The lab for real: boots the controller container and checks what deployments rely on.

Nothing is mocked. Outside CI the module skips (with the reason) when not root or
without systemd-nspawn; with CI=true those are failures (see lab.pytest_plugin).
The last tests take the lab down and check that nothing is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from typing import Any

import pytest

from lab import controller, nspawn
from lab.paths import CGROUP_NAME, KEYSTONE_AUTH_URL, LOOPBACK, MACHINE_NAME, PORTS, run_dir
from lab.pytest_plugin import require_lab

PREFETCHED = ("glance-api", "python3-pymysql", "python3-psycopg2")
SERVICE_PORTS = {name: port for name, port in PORTS.items() if name != "glance"}


@pytest.fixture(scope="module", autouse=True)
def pristine(lab_host: controller.Lab) -> controller.Lab:
    """These tests check the lab as `up` leaves it. If another suite in this pytest run
    shares the lab (and deployed onto it), reboot it: the overlay makes that pristine."""
    if controller.shared_users() > 1:
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


# ---- the running lab -------------------------------------------------------------------


def test_systemd_is_running(lab_host: controller.Lab) -> None:
    state = lab_host.ssh("systemctl is-system-running", check=False).stdout.strip()
    failed = lab_host.ssh("systemctl --failed --plain --no-legend", check=False).stdout
    assert state == "running", f"system state {state}; failed units:\n{failed}"
    assert lab_host.ssh("cat /proc/1/comm").stdout.strip() == "systemd"


def test_root_is_a_pristine_overlay(lab_host: controller.Lab) -> None:
    assert lab_host.ssh("findmnt -no FSTYPE /").stdout.strip() == "overlay"


def test_services_are_active(lab_host: controller.Lab) -> None:
    units = "ssh mariadb postgresql@15-main memcached keystone"
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
    }
    assert conn["mysql"]["endpoint"] == "127.0.0.1:3306"
    assert conn["postgresql"]["host"] == "127.0.0.1" and conn["postgresql"]["port"] == 5432
    assert conn["postgresql"]["admin_user"] == "postgres"
    assert conn["postgresql"]["hba_path"] == "/etc/postgresql/15/main/pg_hba.conf"
    assert conn["keystone"]["auth_url"] == "http://127.0.0.1:5000/v3"
    assert conn["keystone"]["region"] == "RegionOne"
    assert conn["memcached"] == "127.0.0.1:11211"
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
    assert controller.status().get("orphaned_pids"), "expected the container to outlive nspawn"
    assert controller.shutdown() == "orphan stopped"
    assert nspawn.cgroup_pids(CGROUP_NAME) == set()
    assert controller.busy_ports() == {}
    assert not run_dir().exists()
