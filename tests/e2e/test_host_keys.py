"""The real engine meets a controller whose SSH host key changed after the deploy: the run
stops before any remote step, naming the host and both fingerprints, and nothing on the
controller changes. Putting the pinned key back lets the same `up` through.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.host_keys import fingerprint
from lab import session
from lab.controller import Lab
from lab.paths import LOOPBACK, PORTS
from lab.stacks import PulumiCli
from tests.e2e import checks
from tests.e2e.conftest import Timer
from tests.e2e.test_lab_stacks import EngineStack, engine_stack

STACK = "lab-mariadb"
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"
# What a remote step would touch: Glance's config, its data and state, and the unit's start.
SNAPSHOT = (
    "find /etc/glance /var/lib/glance -xdev -printf '%p %T@ %s %m %u\\n' | sort; "
    "systemctl show -p ActiveEnterTimestampMonotonic glance-api.service"
)


@pytest.fixture(scope="class")
def deployed(lab_host: Lab, pulumi_cli: PulumiCli) -> Iterator[EngineStack]:
    yield from engine_stack(STACK, lab_host, pulumi_cli, {})


class Impostor:
    """The controller answering with a new host key, and ssh that trusts only that key."""

    def __init__(self, lab: Lab, work: Path) -> None:
        self.lab = lab
        self.key = work / "impostor_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        self.public = " ".join(self.key.with_suffix(".pub").read_text().split()[:2])
        self.known_hosts = work / "known_hosts"
        self.known_hosts.write_text(f"[{LOOPBACK}]:{PORTS['ssh']} {self.public}\n")

    def ssh(self, command: str, input: str | None = None) -> str:
        login = Path(self.lab.connection["ssh"]["private_key_path"])
        argv = session.ssh_argv(command, login, self.known_hosts, LOOPBACK)
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120, check=True)
        return result.stdout

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """sshd presents the new key until the block ends; then the image's key again."""
        swap = (
            f"set -e; cp -p {HOST_KEY} {HOST_KEY}.pinned; cp -p {HOST_KEY}.pub {HOST_KEY}.pub.pinned; "
            f"cat > {HOST_KEY}; echo '{self.public}' > {HOST_KEY}.pub; systemctl restart ssh"
        )
        self.lab.ssh("bash -c " + shlex.quote(swap), input=self.key.read_text())
        try:
            yield
        finally:
            self.ssh(
                f"mv -f {HOST_KEY}.pinned {HOST_KEY}; mv -f {HOST_KEY}.pub.pinned {HOST_KEY}.pub; systemctl restart ssh"
            )


@pytest.mark.e2e
class TestChangedHostKey:
    def test_up(self, deployed: EngineStack) -> None:
        with Timer(f"engine {STACK} (host keys): up"):
            deployed.cli("up", "--yes", "--skip-preview")
        checks.assert_units_and_config_ownership(deployed.target)

    def test_a_changed_key_stops_the_run_before_any_step(self, deployed: EngineStack, tmp_path: Path) -> None:
        lab = deployed.target.lab
        assert isinstance(lab, Lab)
        impostor = Impostor(lab, tmp_path)
        deployed.set_config("glance:debug", "true")  # a change the run would carry to the controller
        before = lab.ssh(SNAPSHOT).stdout
        pinned = deployed.target.lab.connection["ssh"]["host_key"]
        with impostor.answering():
            deployed.cli("up", "--yes", "--skip-preview", expect_failure=True)
            refusal = deployed.outputs[-1]
            assert f"SSH host key mismatch for {LOOPBACK}:{PORTS['ssh']}" in refusal, refusal
            assert fingerprint(impostor.public) in refusal and fingerprint(pinned) in refusal, refusal
            assert "Traceback" not in refusal, refusal
            print(refusal)  # what the operator reads (pytest -s shows it)
            after = impostor.ssh(SNAPSHOT)
        assert after == before
        assert not checks.api_conf(deployed.target).has_option("DEFAULT", "debug")

    def test_each_step_refuses_the_impostor_by_itself(self, deployed: EngineStack, tmp_path: Path) -> None:
        """Without the program's check (destroy runs no program): pulumi-command's own verification.
        Destroying the units step (and what depends on it: restart, gate, image) dials the host."""
        lab = deployed.target.lab
        assert isinstance(lab, Lab)
        impostor = Impostor(lab, tmp_path)
        units = (
            f"urn:pulumi:{STACK}::glance::glance:service:GlanceService$glance:node:GlanceNode$command:remote:Command"
            "::glance-units"
        )
        with impostor.answering():
            with Timer(f"engine {STACK} (host keys): destroy refused by the step"):
                deployed.cli(
                    "destroy", "--yes", "--skip-preview", "--target", units, "--target-dependents", expect_failure=True
                )
            refusal = deployed.outputs[-1]
            assert "glance-units" in refusal and "ssh: host key mismatch" in refusal, refusal
            # The units were not stopped: the step never ran on the impostor.
            assert impostor.ssh("systemctl is-active glance-api.service").strip() == "active"

    def test_the_pinned_key_back_lets_the_same_up_through(self, deployed: EngineStack) -> None:
        deployed.cli("up", "--yes", "--skip-preview")
        assert checks.api_conf(deployed.target)["DEFAULT"]["debug"] == "True"

    def test_destroy_leaves_nothing(self, deployed: EngineStack) -> None:
        deployed.cli("destroy", "--yes", "--skip-preview")
        checks.assert_nothing_left(deployed.target)
