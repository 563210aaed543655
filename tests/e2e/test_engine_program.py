"""The real Pulumi engine and Python language host running this program (no lab needed).

Config validation happens before any resource is registered, so the engine can show it
even while the official provider plugins are missing from the toolchain.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

from lab.stacks import PulumiCli, write_stack
from tests.e2e.conftest import toolchain_dir
from tests.unit.harness import ed25519_key, openssh_private_key

PLUGINS = ("random", "mysql", "openstack", "command", "postgresql")


def make_stack(pulumi: PulumiCli, name: str, config: dict[str, Any]) -> None:
    pulumi.run("stack", "init", "--secrets-provider", "passphrase", name)
    stack_file = Path(pulumi.cwd) / "stacks" / f"Pulumi.{name}.yaml"
    salt = stack_file.read_text().split("encryptionsalt:", 1)[1].split()[0]
    stack_file.write_text(json.dumps({"encryptionsalt": salt, "config": config}))
    pulumi.run("config", "set", "--secret", "--stack", name, "glance:sshPrivateKey", stdin=openssh_private_key())
    for key in ("dbAdminPassword", "keystoneAdminPassword"):
        pulumi.run("config", "set", "--secret", "--stack", name, f"glance:{key}", stdin=secrets.token_urlsafe(16))


def preview(pulumi: PulumiCli, name: str) -> subprocess.CompletedProcess[str]:
    return pulumi.run("preview", "--stack", name, check=False)


def missing_plugins() -> list[str]:
    manifest = json.loads((toolchain_dir() / "manifest.json").read_text())
    return list(manifest.get("missing", []))


def test_engine_refuses_bad_config_before_any_resource(pulumi_cli: PulumiCli) -> None:
    make_stack(pulumi_cli, "typo", {"glance:profile": "debian", "glance:contollerHost": "controller"})
    result = preview(pulumi_cli, "typo")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "glance:contollerHost is not a known key" in output
    assert "Traceback" not in output
    for registered in ("glance:passwords:ServicePasswords", "pulumi:providers:", "glance:database:"):
        assert registered not in output


def test_engine_reads_secret_config_and_reaches_the_resources(pulumi_cli: PulumiCli) -> None:
    # Nothing listens on loopback port 9: the preview gets as far as the providers' first call
    # (the host key check cannot reach the host either, and leaves it to the steps).
    unreachable = {
        "glance:controllerHost": "127.0.0.1",
        "glance:sshPort": 9,
        "glance:sshHostKeys": [f"127.0.0.1 {ed25519_key(1)}"],
        "glance:keystoneApiUrl": "http://127.0.0.1:9/v3",
    }
    make_stack(pulumi_cli, "debian-check", {"glance:profile": "debian", "glance:dbEngine": "mysql", **unreachable})
    result = preview(pulumi_cli, "debian-check")
    output = result.stdout + result.stderr
    assert "invalid stack config" not in output
    assert result.returncode != 0
    missing = missing_plugins()
    if missing:
        # The program validated its config and registered its first resources; the engine
        # then needs a plugin the toolchain lacks.
        assert any(f"resource-{name}" in output or f"'{name}'" in output for name in missing), output
        return
    # With every plugin: the components are registered and the openstack provider, configured
    # from the secret config, calls Keystone (and finds nobody there).
    for component in ("glance:database:GlanceDatabase", "glance:identity:GlanceIdentity", "glance:node:GlanceNode"):
        assert component in output, output
    # The two lookups run concurrently: whichever fails first is reported.
    assert re.search(r"openstack:identity/get(Project|Role):get\1 failed", output), output
    assert "127.0.0.1:9" in output, output


def test_lab_stack_config_round_trips_through_the_cli(pulumi_cli: PulumiCli, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n" + secrets.token_urlsafe(60) + "\n-----END-----\n")
    connection: dict[str, Any] = {
        "ssh": {"host": "127.0.0.1", "port": 2222, "private_key_path": str(key), "host_key": ed25519_key(2)},
        "memcached": "127.0.0.1:11211",
        "mysql": {"admin_user": "labadmin", "admin_password": secrets.token_urlsafe(12)},
        "postgresql": {"admin_user": "postgres", "admin_password": "p", "hba_path": "/etc/pg_hba.conf"},
        "keystone": {
            "auth_url": "http://127.0.0.1:5000/v3",
            "admin_user": "admin",
            "admin_password": secrets.token_urlsafe(12),
            "admin_project": "admin",
            "region": "RegionOne",
        },
    }
    stack_file = write_stack("lab-mariadb", pulumi_cli, connection, tmp_path / "cirros.qcow2")
    shown = json.loads(pulumi_cli.run("config", "--show-secrets", "--json", "--stack", "lab-mariadb").stdout)
    # The CLI drops the final newline of a value read from stdin; SSH key parsing does not need it.
    assert shown["glance:sshPrivateKey"] == {"value": key.read_text().rstrip("\n"), "secret": True}
    assert shown["glance:dbAdminPassword"] == {"value": connection["mysql"]["admin_password"], "secret": True}
    assert shown["glance:keystoneAdminPassword"]["secret"] is True
    assert shown["glance:sshPort"]["value"] == "2222" and shown["glance:protectData"]["value"] == "false"
    assert json.loads(shown["glance:memcachedServers"]["value"]) == ["127.0.0.1:11211"]
    assert json.loads(shown["glance:sshHostKeys"]["value"]) == [f"127.0.0.1 {ed25519_key(2)}"]
    text = stack_file.read_text()
    assert connection["mysql"]["admin_password"] not in text and "OPENSSH" not in text
