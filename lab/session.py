"""The pieces of a lab session that lab.lifecycle puts together for any topology.

Run-dir files, a fresh ssh key with the image's host key pinned, ssh as root to a node,
the probes the boot waits on, the logins it checks, Keystone's API, and the connection
settings a stack reads.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import LabError
from .guest.bootstrap import api_call, password_auth
from .paths import KEYSTONE_AUTH_URL, PG_HBA_PATH, PORTS, REGION, SWIFT_SERVICE_TYPE

# ---- run-dir files ---------------------------------------------------------------------


def write_private(path: Path, text: str) -> None:
    """Write a file only root can read (0600 from the start, not after)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a run-dir file; None if it is missing or torn."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def read_connection(path: Path, none_up: str) -> dict[str, Any]:
    """The connection settings `up` wrote to `path`; LabError(none_up) if there are none."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(none_up) from None
    return data


def image_host_key(image: Path) -> str:
    """`ssh-ed25519 BASE64`: the host key every controller booted from `image` presents."""
    return " ".join(json.loads((image / "manifest.json").read_text())["ssh_host_key"].split()[:2])


def make_session_key(run: Path, image: Path, comment: str, addresses: Iterable[str]) -> Path:
    """A fresh key for the session: its public half becomes authorized_keys (bind-mounted
    into every controller), and known_hosts pins the image's host key at each address."""
    key = run / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    shutil.copyfile(key.with_suffix(".pub"), run / "authorized_keys")
    os.chmod(run / "authorized_keys", 0o600)  # sshd's StrictModes
    host_key = image_host_key(image)
    (run / "known_hosts").write_text("".join(f"[{address}]:{PORTS['ssh']} {host_key}\n" for address in addresses))
    return key


# ---- reaching a controller ---------------------------------------------------------------


def ssh_argv(command: str, key: Path, known_hosts: Path, address: str) -> list[str]:
    """argv for running `command` as root on the controller at `address`, host key pinned."""
    return [
        "ssh",
        "-i",
        str(key),
        "-p",
        str(PORTS["ssh"]),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "LogLevel=ERROR",
        f"root@{address}",
        command,
    ]


def run_ssh(argv: list[str], input: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run an ssh argv; `input` (secrets, scripts) goes on stdin, never in argv."""
    return subprocess.run(
        argv, input=input if input is not None else "", capture_output=True, text=True, timeout=timeout, check=False
    )


def checked(result: subprocess.CompletedProcess[str], command: str, where: str) -> subprocess.CompletedProcess[str]:
    """The result of `command` run `where`; LabError with its output if it failed."""
    if result.returncode != 0:
        raise LabError(
            f"{where} failed (exit {result.returncode}): {command}\n"
            f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
        )
    return result


def ssh_banner(address: str) -> bool:
    """sshd accepts connections at `address` (cheap: no key exchange)."""
    try:
        with socket.create_connection((address, PORTS["ssh"]), timeout=1) as sock:
            return sock.recv(16).startswith(b"SSH-")
    except OSError:
        return False


def http_status(url: str) -> int | None:
    """The HTTP status of a GET (also 4xx/5xx), None if nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def amqp_answers(address: str) -> bool:
    """RabbitMQ has booted and accepts AMQP at `address`: it answers the AMQP 0-9-1
    protocol header with connection.start (its listeners open last, after every boot step)."""
    try:
        with socket.create_connection((address, PORTS["rabbitmq"]), timeout=1) as sock:
            sock.settimeout(2)
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            frame = b""
            while len(frame) < 11 and (chunk := sock.recv(11 - len(frame))):
                frame += chunk
    except OSError:
        return False
    # A method frame (type 1) on channel 0 (bytes 1-2), after its size (3-6): class 10
    # (connection), method 10 (start).
    return frame[:3] == b"\x01\x00\x00" and frame[7:11] == b"\x00\x0a\x00\x0a"


def memcached_answers(address: str) -> bool:
    try:
        with socket.create_connection((address, PORTS["memcached"]), timeout=1) as sock:
            sock.sendall(b"version\r\n")
            return sock.recv(64).startswith(b"VERSION ")
    except OSError:
        return False


def check_database_logins(
    run_script: Callable[[str], subprocess.CompletedProcess[str]], address: str, secrets_: Mapping[str, str], where: str
) -> None:
    """Log in as the admin accounts the Pulumi providers use, over TCP to `address`.

    `run_script` runs a bash script on a controller; the passwords are inside the script,
    which travels on stdin, never in argv. Services may still be finishing start-up right
    after boot: retried for a minute.
    """
    script = (
        "set -e\n"
        f"MYSQL_PWD='{secrets_['mysql_admin_password']}' mysql --protocol=TCP -h {address} "
        f"-P {PORTS['mysql']} -u {secrets_['mysql_admin_user']} -N -e 'SELECT 1'\n"
        f"PGPASSWORD='{secrets_['postgresql_admin_password']}' psql -h {address} "
        f"-p {PORTS['postgresql']} -U postgres -d postgres -tAc 'SELECT 1'\n"
    )
    deadline = time.monotonic() + 60
    while True:
        result = run_script(script)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise LabError(f"database admin login {where} failed: {result.stderr.strip()}")
        time.sleep(0.5)


def connection_settings(
    address: str, keystone_url: str, swift_url: str, key: Path, image: Path, secrets_: Mapping[str, str]
) -> dict[str, Any]:
    """What a stack needs to deploy onto a lab booted from `image` whose services answer at `address`."""
    return {
        "ssh": {
            "host": address,
            "port": PORTS["ssh"],
            "user": "root",
            "private_key_path": str(key),
            # What a stack pins (glance:sshHostKeys): the image's key, the same on every controller.
            "host_key": image_host_key(image),
        },
        "mysql": {
            "endpoint": f"{address}:{PORTS['mysql']}",
            "admin_user": secrets_["mysql_admin_user"],
            "admin_password": secrets_["mysql_admin_password"],
        },
        "postgresql": {
            "host": address,
            "port": PORTS["postgresql"],
            "admin_user": "postgres",
            "admin_password": secrets_["postgresql_admin_password"],
            "hba_path": PG_HBA_PATH,
        },
        "keystone": {
            "auth_url": keystone_url,
            "admin_user": "admin",
            "admin_password": secrets_["keystone_admin_password"],
            "admin_project": "admin",
            "region": REGION,
        },
        "memcached": f"{address}:{PORTS['memcached']}",
        "swift": {"url": swift_url, "service_type": SWIFT_SERVICE_TYPE},
        "rabbitmq": rabbitmq_settings(address, secrets_),
    }


def rabbitmq_settings(address: str, secrets_: Mapping[str, str]) -> dict[str, Any]:
    """RabbitMQ at `address` as the user Glance sends notifications as (vhost "/"), also
    as oslo.messaging's transport_url."""
    user, password, port = secrets_["rabbitmq_user"], secrets_["rabbitmq_password"], PORTS["rabbitmq"]
    quoted = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    return {
        "host": address,
        "port": port,
        "user": user,
        "password": password,
        "transport_url": f"rabbit://{quoted}@{address}:{port}/",
    }


# ---- keystone ------------------------------------------------------------------------------


def keystone_token(
    password: str, user: str = "admin", project: str = "admin", auth_url: str = KEYSTONE_AUTH_URL
) -> str:
    """Issue a project-scoped token (raises if Keystone refuses); returns the token.
    `auth_url`: another Keystone than the single lab's, e.g. the cluster's."""
    deadline = time.monotonic() + 60
    while True:
        try:
            token, _ = api_call(f"{auth_url}/auth/tokens", "POST", password_auth(user, password, project), timeout=30)
            if token:
                return token
        except urllib.error.HTTPError as error:
            if error.code in (400, 401, 403, 404):
                raise LabError(f"keystone refused the admin token request: HTTP {error.code}") from None
        except OSError:
            pass  # not answering yet (first requests warm up uwsgi workers)
        if time.monotonic() > deadline:
            raise LabError("keystone issued no token within 60s")
        time.sleep(0.5)


def keystone_call(auth_url: str, method: str, path: str, token: str, body: Any = None) -> Any:
    """One Keystone API call with a token; its JSON answer (None if empty)."""
    for attempt in range(5):  # uwsgi's http-socket: a fresh connection each time, rarely reset
        try:
            return api_call(f"{auth_url}{path}", method, body, token, timeout=30)[1]
        except urllib.error.HTTPError as error:
            raise LabError(f"keystone {method} {path}: HTTP {error.code}") from None
        except OSError:
            if attempt == 4:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")
