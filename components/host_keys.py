"""Before anything is registered: each SSH host presents the key the stack pins for it.

Every remote step's connection carries the pinned key, and the provider refuses any other
(that is the protection). This check runs first so that a host whose key changed stops the
whole run at once, with a message naming the host and both fingerprints, instead of each step
failing on its own after its dial retries. A host that cannot be reached now is left to the
steps: they verify the same key when they connect.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections.abc import Iterable

from pulumi import RunError

from components.settings import SshTarget

SCAN_TIMEOUT_SECONDS = 5


class HostKeyMismatchError(RunError):
    """A host presented another key than the pinned one: the run stops before any step."""


def fingerprint(key: str) -> str:
    """`TYPE BASE64` -> `TYPE SHA256:...`, as `ssh-keygen -lf` shows it."""
    kind, blob = key.split()[:2]
    digest = base64.b64encode(hashlib.sha256(base64.b64decode(blob)).digest()).decode().rstrip("=")
    return f"{kind} SHA256:{digest}"


def keyscan(host: str, port: int, kind: str) -> list[str] | None:
    """The keys of type `kind` the host presents (`TYPE BASE64`); None if it cannot be reached."""
    try:
        scan = subprocess.run(
            ["ssh-keyscan", "-T", str(SCAN_TIMEOUT_SECONDS), "-p", str(port), "-t", kind, "--", host],
            capture_output=True,
            text=True,
            timeout=SCAN_TIMEOUT_SECONDS * 3,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    keys = [" ".join(line.split()[1:3]) for line in scan.stdout.splitlines() if len(line.split()) >= 3]
    # Reached but no key of this type: sshd answered and offered another type only.
    return keys if keys or "SSH-" in scan.stderr else None


def verify(targets: Iterable[SshTarget]) -> list[str]:
    """Raises HostKeyMismatchError for the first host whose key differs; returns the hosts that could
    not be checked now (unreachable), for a warning."""
    unchecked: list[str] = []
    for target in {(t.host, t.port): t for t in targets}.values():
        if target.host_key is None:
            continue
        kind = target.host_key.split()[0]
        presented = keyscan(target.host, target.port, kind)
        if presented is None:
            unchecked.append(f"{target.host}:{target.port}")
        elif target.host_key not in presented:
            shown = ", ".join(map(fingerprint, presented)) or f"no {kind} key"
            raise HostKeyMismatchError(
                f"SSH host key mismatch for {target.host}:{target.port}: it presented {shown}, but "
                f"glance:sshHostKeys pins {fingerprint(target.host_key)}. Nothing was sent to it and "
                "no step ran. If the host was rebuilt, check the new key out of band and pin it; otherwise "
                "something else is answering at that address."
            )
    return unchecked
