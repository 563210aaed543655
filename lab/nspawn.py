"""systemd-nspawn containers on a machine whose PID 1 is not systemd.

Facts this module is built on (measured; lab/README.md's Gotchas has more):
- `--register=no --keep-unit` are required: there is no system bus to register with.
- With `--keep-unit` the container lives in the cgroup nspawn was started in. Every
  container therefore gets its own cgroup subtree (named hierarchy + unified), which
  also lets us find and, as a last resort, kill exactly the processes it started.
- The host uses cgroup v1 hybrid mounts; nspawn creates payload/ and supervisor/ below
  its cgroup, and the container's systemd its slices below payload/.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError

CGROUP_MOUNTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))
# nspawn's own harmless noise on cgroup v1 hosts.
NOISE = ("Failed to create symlink /sys/fs/cgroup/", "Attempted to remove disk file system")


def cgroup_dirs(name: str) -> list[Path]:
    """The subtree directories for `name` on the hierarchies this host mounts."""
    return [mount / name for mount in CGROUP_MOUNTS if mount.is_dir()]


def create_cgroup(name: str) -> None:
    for path in cgroup_dirs(name):
        path.mkdir(exist_ok=True)


def cgroup_pids(name: str) -> set[int]:
    """Every process anywhere below the subtree (nspawn, the container, its services)."""
    pids: set[int] = set()
    for root in cgroup_dirs(name):
        if not root.is_dir():
            continue
        for path in _subdirs(root):
            try:
                pids.update(int(line) for line in (path / "cgroup.procs").read_text().split())
            except OSError:
                continue  # a cgroup removed while walking
    return pids


def memory_pss(cgroups: Iterable[str]) -> int:
    """Proportional set size of every process below these subtrees, in bytes (without a
    `--volatile=overlay` container's tmpfs upper layer: files written during the session)."""
    total = 0
    for cgroup in cgroups:
        for pid in cgroup_pids(cgroup):
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
            except OSError:
                continue
    return total


def _subdirs(root: Path) -> list[Path]:
    """root and every cgroup below it. os.walk, unlike Path.rglob, tolerates directories
    vanishing mid-walk (the container's systemd removes its cgroups as units stop)."""
    return [Path(top) for top, _, _ in os.walk(root)]


def remove_cgroup(name: str, timeout: float = 5.0) -> None:
    """Remove the (empty) subtree bottom-up; rmdir is the only way to delete a cgroup.
    A cgroup whose last process is still exiting is busy for a moment: retry briefly."""
    deadline = time.monotonic() + timeout
    for root in cgroup_dirs(name):
        if not root.is_dir():
            continue
        for path in sorted(_subdirs(root), key=lambda p: -len(p.parts)):  # deepest first
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as error:
                    if time.monotonic() > deadline:
                        raise LabError(
                            f"cannot remove cgroup {path}: {error} (processes left: {sorted(cgroup_pids(name))})"
                        ) from None
                    time.sleep(0.1)


@dataclass(frozen=True)
class Launch:
    """How to run one container: rootfs, name, extra nspawn flags, payload argv."""

    rootfs: Path
    machine: str
    cgroup: str
    flags: Sequence[str] = ()
    argv: Sequence[str] = ()


def nspawn_argv(launch: Launch) -> list[str]:
    return [
        "systemd-nspawn",
        "--quiet",
        f"--directory={launch.rootfs}",
        f"--machine={launch.machine}",
        "--register=no",
        "--keep-unit",
        "--link-journal=no",
        *launch.flags,
        *launch.argv,
    ]


def start(launch: Launch, log_path: Path) -> subprocess.Popen[bytes]:
    """Start nspawn in the background, inside its own cgroup subtree and session.

    A tiny shell moves itself into the subtree and then execs nspawn, so the PID we
    record is nspawn's and nothing of the container ever runs outside the subtree.
    start_new_session detaches it from our terminal: `lab up` returns, the lab stays.
    """
    create_cgroup(launch.cgroup)
    joins = "; ".join(f'echo $$ > "{d}/cgroup.procs"' for d in cgroup_dirs(launch.cgroup))
    script = f'{joins}; exec "$@"'
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            ["/bin/sh", "-c", script, "nspawn", *nspawn_argv(launch)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def pid_alive(pid: int) -> bool:
    """True if `pid` runs and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def is_nspawn(pid: int, machine: str) -> bool:
    """Guard against PID reuse: only ever signal our own nspawn for `machine`."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and os.path.basename(argv[0]) == b"systemd-nspawn" and f"--machine={machine}".encode() in argv


def container_leader(nspawn_pid: int) -> int | None:
    """The container's PID 1 as seen from the host: nspawn's child that is PID 1 inside."""
    for child in _children(nspawn_pid):
        if _ns_pids(child)[-1:] == [1]:
            return child
    return None


def _children(pid: int) -> Iterator[int]:
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            yield from (int(c) for c in task.read_text().split())
        except OSError:
            continue


def _ns_pids(pid: int) -> list[int]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


def nsenter_argv(leader: int, argv: Sequence[str]) -> list[str]:
    """Run a command inside the container without ssh (no machinectl without D-Bus)."""
    return ["nsenter", f"--target={leader}", "--mount", "--uts", "--ipc", "--net", "--pid", *argv]


def container_run(
    nspawn_pid: int, argv: Sequence[str], input: str | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str] | None:
    """Run argv inside the container of `nspawn_pid` (its namespaces, as root), secrets
    on `input`; None if the container has no PID 1 (yet, or any more)."""
    leader = container_leader(nspawn_pid)
    if leader is None:
        return None
    return subprocess.run(
        nsenter_argv(leader, argv),
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def system_state(nspawn_pid: int) -> str:
    """`systemctl is-system-running` inside ("running", "degraded", "starting", ...); "" if
    the container has no PID 1."""
    result = container_run(nspawn_pid, ["systemctl", "is-system-running"])
    return result.stdout.strip() if result is not None else ""


def failed_units(nspawn_pid: int) -> list[str]:
    result = container_run(nspawn_pid, ["systemctl", "--failed", "--plain", "--no-legend"])
    if result is None:
        return []
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def stop(pid: int, cgroup: str, timeout: float = 30.0, reap: subprocess.Popen[bytes] | None = None) -> str:
    """SIGTERM nspawn (the container powers off cleanly), SIGKILL after `timeout`.

    Returns how it ended: "terminated", "killed", "orphan stopped" or "not running".
    A container outlives a SIGKILLed nspawn (measured: its systemd and services keep
    running), so whatever is left in the subtree is stopped too, see stop_orphans().
    """
    outcome = "not running"
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        if _wait_gone(pid, timeout, reap):
            outcome = "terminated"
        else:
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0, reap)
            outcome = "killed"
    if stop_orphans(cgroup, timeout=10.0) and outcome == "not running":
        outcome = "orphan stopped"
    return outcome


def stop_orphans(cgroup: str, timeout: float) -> bool:
    """Stop what is still in the subtree without its nspawn: ask each container's systemd
    to power off (SIGRTMIN+4; SIGTERM would only make it re-execute), then SIGKILL.
    Only processes of our own subtree are touched. Returns whether there were any."""
    pids = _live(cgroup_pids(cgroup))
    if not pids:
        return False
    for leader in (p for p in pids if len(_ns_pids(p)) > 1 and _ns_pids(p)[-1] == 1):
        with contextlib.suppress(ProcessLookupError):
            os.kill(leader, signal.SIGRTMIN + 4)
    deadline = time.monotonic() + timeout
    while _live(cgroup_pids(cgroup)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for leftover in _live(cgroup_pids(cgroup)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(leftover, signal.SIGKILL)
    deadline = time.monotonic() + 10.0
    while _live(cgroup_pids(cgroup)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return True


def _live(pids: set[int]) -> set[int]:
    return {p for p in pids if pid_alive(p)}


def _wait_gone(pid: int, timeout: float, reap: subprocess.Popen[bytes] | None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reap is not None:
            reap.poll()  # our own child: reap it, or it stays a zombie
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def log_tail(path: Path, lines: int = 40) -> str:
    """The end of a console log, without nspawn's known noise."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if not any(n in line for n in NOISE)]
    return "\n".join(kept[-lines:])
