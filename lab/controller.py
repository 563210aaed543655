"""Boot, inspect and stop the lab controller; the Python API behind `python3 -m lab`.

    from lab.controller import Lab
    with Lab() as lab:                       # builds the image if needed, boots, waits
        lab.connection["keystone"]["auth_url"]
        lab.ssh("systemctl is-active mariadb").stdout
    # shut down here, also after an exception

Lower level: ensure_image(), boot(), shutdown(), status(), ssh(), read_connection().
One lab runs per machine at a time (it owns fixed loopback ports); its state lives in
paths.run_dir() so that `up` and `down` can be separate processes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import locks, nspawn, session
from .errors import LabError
from .image import ensure_image, image_dir, read_secrets
from .paths import (
    CGROUP_NAME,
    KEYSTONE_AUTH_URL,
    LOOPBACK,
    MACHINE_NAME,
    PORTS,
    SWIFT_STORAGE_PORTS,
    SWIFT_URL,
    run_dir,
)
from .session import Log, Session, SharedSession

__all__ = [
    "Lab",
    "LabError",
    "boot",
    "ensure_image",
    "is_up",
    "read_connection",
    "shared",
    "shutdown",
    "ssh",
    "ssh_argv",
    "status",
]

BOOT_TIMEOUT = 240.0  # generous: 2 cores shared with other builds
STOP_TIMEOUT = 30.0


def _stderr_log(message: str) -> None:
    print(f"[lab] {message}", file=sys.stderr, flush=True)


# ---- run-dir state ---------------------------------------------------------------------


def _state_path() -> Path:
    return run_dir() / "state.json"


def connection_path() -> Path:
    return run_dir() / "connection.json"


def _read_state() -> dict[str, Any] | None:
    return session.read_json(_state_path())


def _recorded_pid() -> int | None:
    state = _read_state()
    return int(state["nspawn_pid"]) if state else None


def is_up() -> bool:
    """A lab is up if the recorded PID is still our nspawn (not a reused PID)."""
    pid = _recorded_pid()
    return pid is not None and nspawn.pid_alive(pid) and nspawn.is_nspawn(pid, MACHINE_NAME)


def read_connection() -> dict[str, Any]:
    """The running lab's connection settings (what `up` wrote to connection.json)."""
    return session.read_connection(connection_path(), "no lab is up (run `python3 -m lab up`)")


def _run_lock() -> AbstractContextManager[None]:
    """Serialise up/down between processes (a second `up` waits, then sees the first)."""
    return locks.exclusive("run.lock")


# ---- preflight ----------------------------------------------------------------------------


def busy_ports() -> dict[str, int]:
    """Ports the lab needs that something already listens on (host networking)."""
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


def _preflight() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (systemd-nspawn, cgroups)")
    if is_up():
        raise LabError(f"a lab is already up (nspawn PID {_recorded_pid()}); run `python3 -m lab down` first")
    if _read_state() is not None or run_dir().exists() or nspawn.cgroup_pids(CGROUP_NAME):
        # A previous lab died without `down` (its container may even run on, orphaned).
        _shutdown_locked(_stderr_log, STOP_TIMEOUT)
    busy = busy_ports()
    if busy:
        listed = ", ".join(f"{name} {LOOPBACK}:{port}" for name, port in busy.items())
        raise LabError(f"ports the lab needs are already in use: {listed}")


# ---- boot -----------------------------------------------------------------------------------


@dataclass
class BootTimings:
    """Seconds from launching nspawn until each milestone."""

    running: float = 0.0
    ssh: float = 0.0
    keystone: float = 0.0
    swift: float = 0.0
    rabbitmq: float = 0.0
    ready: float = 0.0
    system_state: str = ""
    failed_units: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"systemd {self.system_state} after {self.running:.1f}s, ssh {self.ssh:.1f}s, "
            f"keystone {self.keystone:.1f}s, swift {self.swift:.1f}s, rabbitmq {self.rabbitmq:.1f}s, "
            f"all checks {self.ready:.1f}s"
        )
        if self.failed_units:
            text += f"; failed units: {', '.join(self.failed_units)}"
        return text


def boot(log: Log = _stderr_log, timeout: float = BOOT_TIMEOUT) -> dict[str, Any]:
    """Boot the cached image (building it if needed) and wait until it is usable.

    Returns the connection settings, also written to run/connection.json (0600).
    On any failure the half-started lab is shut down again before the error propagates.
    """
    image = ensure_image(log)
    with _run_lock():
        _preflight()
        run = run_dir()
        run.mkdir(parents=True, mode=0o700)
        key = session.make_session_key(run, image, "glance-pulumi-lab", [LOOPBACK])
        launch = nspawn.Launch(
            rootfs=image / "rootfs",
            machine=MACHINE_NAME,
            cgroup=CGROUP_NAME,
            flags=[
                "--boot",
                "--volatile=overlay",  # pristine root every session: tmpfs upper layer
                "--resolv-conf=copy-host",
                f"--bind-ro={run / 'authorized_keys'}:/root/.ssh/authorized_keys",
            ],
        )
        started = time.monotonic()
        proc = nspawn.start(launch, run / "console.log")
        session.write_private(
            _state_path(),
            json.dumps({"nspawn_pid": proc.pid, "image": str(image), "started_at": time.time()}) + "\n",
        )
        try:
            timings = _wait_until_ready(proc, started, key, image, timeout)
            connection = _connection(proc.pid, key, image)
            session.write_private(connection_path(), json.dumps(connection, indent=2) + "\n")
        except BaseException:
            _shutdown_locked(log, STOP_TIMEOUT, reap=proc)
            raise
    log(f"lab up (nspawn PID {proc.pid}): {timings.summary()}")
    log(f"connection settings: {connection_path()}")
    return connection


def _wait_until_ready(
    proc: subprocess.Popen[bytes], started: float, key: Path, image: Path, timeout: float
) -> BootTimings:
    """Poll the boot milestones together so each gets its own timing, then check the
    logins a deployment depends on."""
    timings = BootTimings()
    deadline = started + timeout
    pending = {"running", "ssh", "keystone", "swift", "rabbitmq"}
    while pending:
        if proc.poll() is not None:
            raise LabError(f"systemd-nspawn exited ({proc.returncode}) during boot:\n{_console_tail()}")
        if time.monotonic() > deadline:
            raise LabError(f"lab not ready after {timeout:.0f}s (waiting for {sorted(pending)}):\n{_console_tail()}")
        if "running" in pending:
            state = nspawn.system_state(proc.pid)
            if state in ("running", "degraded"):
                timings.running, timings.system_state = time.monotonic() - started, state
                pending.discard("running")
        if "ssh" in pending and session.ssh_banner(LOOPBACK):
            timings.ssh = time.monotonic() - started
            pending.discard("ssh")
        if "keystone" in pending and session.http_status(KEYSTONE_AUTH_URL) == 200:
            timings.keystone = time.monotonic() - started
            pending.discard("keystone")
        if "swift" in pending and _swift_healthy():
            timings.swift = time.monotonic() - started
            pending.discard("swift")
        if "rabbitmq" in pending and session.amqp_answers(LOOPBACK):
            timings.rabbitmq = time.monotonic() - started
            pending.discard("rabbitmq")
        time.sleep(0.1)
    if timings.system_state == "degraded":
        timings.failed_units = nspawn.failed_units(proc.pid)
    secrets_ = read_secrets(image)
    _check_ssh_login(key)
    # The clients run inside the container, which shares the host's network namespace:
    # same socket, same pg_hba line and MariaDB host matching as a connection from the host.
    session.check_database_logins(
        lambda script: _ssh_raw(key, "bash -s", input=script, timeout=60), LOOPBACK, secrets_, f"to {LOOPBACK}"
    )
    keystone_token(secrets_["keystone_admin_password"])
    timings.ready = time.monotonic() - started
    return timings


def _swift_healthy() -> bool:
    """The proxy and the account, container and object servers answer /healthcheck."""
    urls = [f"{SWIFT_URL}/healthcheck"]
    urls += [f"http://{LOOPBACK}:{PORTS[name]}/healthcheck" for name in SWIFT_STORAGE_PORTS]
    return all(session.http_status(url) == 200 for url in urls)


def _check_ssh_login(key: Path) -> None:
    result = _ssh_raw(key, "true", timeout=30)
    if result.returncode != 0:
        raise LabError(f"ssh key login failed: {result.stderr.strip()}")


def keystone_token(
    password: str, user: str = "admin", project: str = "admin", auth_url: str = KEYSTONE_AUTH_URL
) -> str:
    """Issue a project-scoped token (raises if Keystone refuses); returns the token.
    `auth_url`: another Keystone than the lab's, e.g. the cluster's (lab.cluster)."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }
    }
    request = urllib.request.Request(
        f"{auth_url}/auth/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                token = response.headers["X-Subject-Token"]
                if response.status == 201 and token:
                    return str(token)
        except urllib.error.HTTPError as error:
            if error.code in (400, 401, 403, 404):
                raise LabError(f"keystone refused the admin token request: HTTP {error.code}") from None
        except OSError:
            pass  # not answering yet (first requests warm up uwsgi workers)
        if time.monotonic() > deadline:
            raise LabError("keystone issued no token within 60s")
        time.sleep(0.5)


def _connection(nspawn_pid: int, key: Path, image: Path) -> dict[str, Any]:
    connection = session.connection_settings(LOOPBACK, KEYSTONE_AUTH_URL, SWIFT_URL, key, image, read_secrets(image))
    return {**connection, "nspawn_pid": nspawn_pid}


def _console_tail() -> str:
    return nspawn.log_tail(run_dir() / "console.log")


# ---- ssh ---------------------------------------------------------------------------------


def ssh_argv(command: str, key: Path | None = None) -> list[str]:
    """argv for running `command` as root in the lab over ssh, host key pinned."""
    key = key or Path(read_connection()["ssh"]["private_key_path"])
    return session.ssh_argv(command, key, run_dir() / "known_hosts", LOOPBACK)


def _ssh_raw(
    key: Path, command: str, input: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return session.run_ssh(ssh_argv(command, key), input=input, timeout=timeout)


def ssh(
    command: str, input: str | None = None, check: bool = True, timeout: float = 600, host: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a shell command in the running lab as root; pass secrets via `input`.

    Raises LabError with the command's output if `check` and it exits non-zero.
    `host` is there for code that serves the cluster too (lab.cluster.Cluster.ssh): the
    single lab has one controller, so only None or its own address are accepted.
    """
    if host not in (None, LOOPBACK):
        raise LabError(f"the single lab has one controller, {LOOPBACK}; no host {host}")
    key = Path(read_connection()["ssh"]["private_key_path"])
    result = _ssh_raw(key, command, input=input, timeout=timeout)
    return session.checked(result, command, "lab command") if check else result


# ---- shutdown ----------------------------------------------------------------------------


def shutdown(log: Log = _stderr_log, timeout: float = STOP_TIMEOUT) -> str:
    """Stop the lab if one is up; safe to call when none is. Returns what happened."""
    with _run_lock():
        return _shutdown_locked(log, timeout)


def _shutdown_locked(log: Log, timeout: float, reap: subprocess.Popen[bytes] | None = None) -> str:
    pid = _recorded_pid()
    started = time.monotonic()
    if pid is not None and nspawn.is_nspawn(pid, MACHINE_NAME):
        outcome = nspawn.stop(pid, CGROUP_NAME, timeout=timeout, reap=reap)
    elif reap is not None:
        outcome = nspawn.stop(reap.pid, CGROUP_NAME, timeout=timeout, reap=reap)
    else:  # no nspawn (never started, or it died): a container may still run orphaned
        outcome = "orphan stopped" if nspawn.stop_orphans(CGROUP_NAME, timeout) else "not running"
    _cleanup_run_dir()
    if outcome != "not running":
        log(f"lab down ({outcome}, PID {pid}) in {time.monotonic() - started:.1f}s")
    return outcome


def _cleanup_run_dir() -> None:
    # Nothing may be left in the subtree: stop() / stop_orphans() ended it by PID.
    nspawn.remove_cgroup(CGROUP_NAME)
    shutil.rmtree(run_dir(), ignore_errors=True)


# ---- status --------------------------------------------------------------------------------


def status() -> dict[str, Any]:
    """What is up: PID, systemd state, failed units, listening ports, memory, image."""
    info: dict[str, Any] = {
        "up": is_up(),
        "image": str(image_dir()),
        "image_built": (image_dir() / "manifest.json").is_file(),
    }
    if not info["up"]:
        orphans = nspawn.cgroup_pids(CGROUP_NAME)
        if orphans:  # nspawn died but its container runs on: `down` stops it
            info["orphaned_pids"] = sorted(orphans)
        return info
    state = _read_state() or {}
    pid = int(state["nspawn_pid"])
    info.update(
        nspawn_pid=pid,
        uptime_s=round(time.time() - float(state.get("started_at", time.time())), 1),
        running_image=state.get("image"),
        system_state=nspawn.system_state(pid),
        failed_units=nspawn.failed_units(pid),
        listening={name: _listening(port) for name, port in PORTS.items()},
        memory_pss_mib=round(nspawn.memory_pss([CGROUP_NAME]) / 2**20, 1),
        connection=str(connection_path()),
    )
    return info


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


# ---- context manager -----------------------------------------------------------------------


class Lab(Session):
    """`with Lab() as lab:` boots the lab and always shuts it down afterwards (see Session)."""

    def __init__(self, log: Log = _stderr_log, timeout: float = BOOT_TIMEOUT) -> None:
        super().__init__(log, timeout)

    def _boot(self) -> dict[str, Any]:
        return boot(self.log, self.timeout)

    def _shutdown(self) -> str:
        return shutdown(self.log)

    def _running(self) -> bool:
        return is_up()

    def ssh(self, command: str, host: str | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """`host`: the controller's address, for callers that also drive lab.cluster's several."""
        return ssh(command, host=host, **kwargs)


# ---- one lab per process, shared by several users (e.g. pytest fixtures) ------------------

shared: SharedSession[Lab] = SharedSession(Lab)
