"""Before anything is registered (pinned stacks only): the Glance version each API host runs now.

Pulumi re-runs a remote step only when its inputs change, so a host someone upgraded (or
downgraded) by hand would keep that version. So the program asks each API host, over SSH
with the stack's key and the pinned host key (a command that sends nothing secret), for the
version installed and for the record of the last version the install step replaced
(scripts.REPLACED_VERSION, numbered). What this finds goes into the host's install, drain
and restart steps: a host off the pin changes them, and the `up` drains it, puts the pin back
and restarts it. That install records what it replaced under the next number, so the runs
after find the same value and nothing changes twice, even when a host goes back to a version
it had before.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from components import scripts
from components.profiles import Profile
from components.settings import SshTarget

SSH_TIMEOUT_SECONDS = 10


def found_version(installed: str, replaced: str, pinned: str) -> str:
    """What a host holds that is not the pin, as the install step records it (`VERSION #N`, the
    N-th version it replaced): a host off the pin gives the next record, which its install then
    writes; a host at the pin gives the record as it is ("" if it was never off the pin)."""
    if installed and installed != pinned:
        count = int(replaced.rpartition(" #")[2] or 0) if replaced else 0
        return f"{installed} #{count + 1}"
    return replaced


def _ssh(target: SshTarget, command: str) -> str | None:
    """`command`'s standard output on the host; None when it cannot be reached or refuses."""
    with tempfile.TemporaryDirectory(prefix="glance-pulumi-") as directory:  # 0700, removed after
        key = Path(directory) / "key"
        key.touch(mode=0o600)
        key.write_text(target.private_key.get_secret_value().rstrip("\n") + "\n")
        known_hosts = Path(directory) / "known_hosts"
        address = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
        known_hosts.write_text(f"{address} {target.host_key}\n" if target.host_key else "")
        checking = "yes" if target.host_key else "no"
        argv = ["ssh", "-i", str(key), "-p", str(target.port), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
        argv += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", f"StrictHostKeyChecking={checking}"]
        argv += ["-o", f"ConnectTimeout={SSH_TIMEOUT_SECONDS}", "-o", "LogLevel=ERROR"]
        try:
            result = subprocess.run(
                [*argv, "-l", target.user, "--", target.host, command],
                capture_output=True,
                text=True,
                timeout=SSH_TIMEOUT_SECONDS * 3,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
    return result.stdout if result.returncode == 0 else None


def observe(targets: Iterable[SshTarget], profile: Profile, pinned: str) -> tuple[dict[str, str], list[str]]:
    """Each host's found_version, and the hosts that could not be asked now (for a warning;
    they count as holding nothing else than the pin)."""
    command = (
        f"{profile.version_pin.installed_version}; echo; "
        f"cat {scripts.STATE_DIR}/{scripts.REPLACED_VERSION} 2>/dev/null || true"
    )
    found: dict[str, str] = {}
    unreachable: list[str] = []
    for target in targets:
        answer = _ssh(target, command)
        if answer is None:
            unreachable.append(target.host)
            found[target.host] = ""
            continue
        installed, _, replaced = answer.partition("\n")
        found[target.host] = found_version(installed.strip(), replaced.strip(), pinned)
    return found, unreachable
