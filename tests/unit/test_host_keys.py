"""Every SSH host proves who it is: a pinned key per host, required, checked before any
resource is registered and again by every remote step's connection."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from components import host_keys
from components.settings import ConfigError
from tests import recording
from tests.unit.harness import (
    TEST_HOST_KEY,
    TEST_SECRETS,
    Deployment,
    GlanceMocks,
    ed25519_key,
    pinned,
    plain,
    presenting,
    run_program,
    stack_config,
)

OTHER_KEY = ed25519_key(9)


def config(**overrides: Any) -> dict[str, Any]:
    return {**stack_config("debian"), **TEST_SECRETS, **overrides}


def run_presenting(key: str | None, settings: dict[str, Any]) -> tuple[Deployment, list[tuple[str, int]]]:
    """The program under mocks while every host presents `key`; the deployment and the hosts asked."""
    deployment = Deployment()
    with presenting(key) as asked:
        recording.run_program(settings, GlanceMocks(), deployment)
    return deployment, asked


def test_a_stack_without_host_keys_is_refused_naming_the_key_and_how_to_get_one() -> None:
    deployment = Deployment()
    with pytest.raises(ConfigError) as refused:
        run_program(config(sshHostKeys=[]), deployment)
    message = str(refused.value)
    assert "glance:sshHostKeys no pinned SSH host key for controller" in message
    assert "ssh-keyscan -t ed25519 controller" in message and "ssh-keygen -lf" in message
    assert deployment.registrations == []


def test_every_host_the_program_logs_in_to_needs_its_own_key() -> None:
    with pytest.raises(ConfigError, match=r"no pinned SSH host key for db1\.example"):
        run_program(config(dbSshHost="db1.example"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("controller", "items must be `HOST TYPE BASE64` lines"),
        (f"controller ssh-dss {TEST_HOST_KEY.split()[1]}", "TYPE one of ssh-ed25519"),
        ("controller ssh-ed25519 not*base64", "the key of controller is not base64"),
        (f"controller ecdsa-sha2-nistp256 {TEST_HOST_KEY.split()[1]}", "not an ecdsa-sha2-nistp256 key"),
        (f"ctl/1 {TEST_HOST_KEY}", "must be a host name"),
    ],
)
def test_a_malformed_key_line_is_refused(line: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        run_program(config(sshHostKeys=[line]))
    assert "glance:sshHostKeys[0]" in str(refused.value) and message in str(refused.value)


def test_a_key_for_a_host_the_stack_never_reaches_is_a_typo() -> None:
    with pytest.raises(ConfigError, match="controler is not a host this stack reaches over SSH"):
        run_program(config(**pinned("controller", "controler")))


def test_keyscan_output_with_a_port_and_a_comment_is_accepted() -> None:
    deployment = run_program(config(sshPort=2222, sshHostKeys=[f"[controller]:2222 {TEST_HOST_KEY} root@controller"]))
    assert plain(deployment.named("glance-install").inputs["connection"])["hostKey"] == TEST_HOST_KEY


def test_every_remote_step_verifies_the_pinned_key() -> None:
    deployment = run_program(config(dbSshHost="db1.example", **pinned("controller", "db1.example")))
    commands = deployment.of_type("command:remote:Command")
    assert len(commands) > 5
    hosts = {plain(c.inputs["connection"])["host"] for c in commands}
    assert hosts == {"controller", "db1.example"}
    for command in commands:
        assert plain(command.inputs["connection"])["hostKey"] == TEST_HOST_KEY, command.name


def test_a_host_presenting_another_key_stops_the_run_before_any_resource() -> None:
    with pytest.raises(host_keys.HostKeyMismatchError) as refused:
        run_presenting(OTHER_KEY, config())
    message = str(refused.value)
    assert "SSH host key mismatch for controller:22" in message
    assert host_keys.fingerprint(OTHER_KEY) in message and host_keys.fingerprint(TEST_HOST_KEY) in message


def test_a_host_offering_no_key_of_the_pinned_type_is_a_mismatch() -> None:
    ecdsa = "ecdsa-sha2-nistp256 " + TEST_HOST_KEY.split()[1]
    with pytest.raises(host_keys.HostKeyMismatchError, match="presented no ssh-ed25519 key"):
        run_presenting(ecdsa, config())


def test_an_unreachable_host_is_left_to_the_steps() -> None:
    deployment, asked = run_presenting(None, config())
    assert asked == [("controller", 22)]
    assert deployment.registrations


def test_each_host_is_checked_once() -> None:
    hosts = ["api1", "api2"]
    stores = [{"id": "objects", "type": "swift"}]
    settings = config(
        apiHosts=hosts,
        publicUrl="https://images.example",
        tlsTermination="loadBalancer",
        stores=stores,
        **pinned(*hosts),
    )
    _, asked = run_presenting(TEST_HOST_KEY, settings)
    assert asked == [("api1", 22), ("api2", 22)]


def test_the_opt_out_skips_the_check_and_the_pins() -> None:
    deployment, asked = run_presenting(OTHER_KEY, config(insecureIgnoreHostKeys=True, sshHostKeys=[]))
    assert asked == []
    assert all("hostKey" not in plain(c.inputs["connection"]) for c in deployment.of_type("command:remote:Command"))


def test_fingerprint_is_what_ssh_keygen_shows(tmp_path: Path) -> None:
    public = tmp_path / "key.pub"
    public.write_text(TEST_HOST_KEY + "\n")
    shown = subprocess.run(["ssh-keygen", "-lf", str(public)], capture_output=True, text=True, check=True).stdout
    assert host_keys.fingerprint(TEST_HOST_KEY) == "ssh-ed25519 " + shown.split()[1]
