"""The unit tests' view of the program: test secrets, mocked resources, the stack files."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components import host_keys, installed_versions
from components.settings import SshTarget
from lab.standin.program import ROOT, SECRET_SIG, SECRET_VALUE, plain
from tests import recording
from tests.recording import Deployment, Registration

__all__ = ["ROOT", "SECRET_SIG", "SECRET_VALUE", "Deployment", "Registration", "plain"]

STACKS = ROOT / "stacks"


def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def openssh_private_key(seed: int = 3, cipher: bytes = b"none") -> str:
    """A well-formed OpenSSH private key file (fake key bytes, no real key); unencrypted unless
    `cipher` names one."""
    public = _ssh_string(b"ssh-ed25519") + _ssh_string(bytes([seed]) * 32)
    private = bytes(8) + public + _ssh_string(bytes([seed]) * 64) + _ssh_string(b"test")
    blob = b"openssh-key-v1\0" + b"".join(
        _ssh_string(part) for part in (cipher, b"none" if cipher == b"none" else b"bcrypt", b"")
    )
    blob += (1).to_bytes(4, "big") + _ssh_string(public) + _ssh_string(private)
    body = base64.b64encode(blob).decode()
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    return "\n".join(["-----BEGIN OPENSSH PRIVATE KEY-----", *lines, "-----END OPENSSH PRIVATE KEY-----", ""])


TEST_SECRETS = {
    "sshPrivateKey": openssh_private_key(),
    "dbAdminPassword": "test-db-admin-pw",
    "keystoneAdminPassword": "test-keystone-admin-pw",
}


def ed25519_key(seed: int) -> str:
    """A well-formed `ssh-ed25519 BASE64` public key (32 bytes of `seed`)."""
    blob = b"".join(len(part).to_bytes(4, "big") + part for part in (b"ssh-ed25519", bytes([seed]) * 32))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()}"


# The key every test host presents (see presenting); the committed stacks leave pins to the operator.
TEST_HOST_KEY = ed25519_key(7)


def pinned(*hosts: str) -> dict[str, Any]:
    """The sshHostKeys config that pins the test key on `hosts`."""
    return {"sshHostKeys": [f"{host} {TEST_HOST_KEY}" for host in hosts]}


@contextlib.contextmanager
def presenting(key: str | None) -> Iterator[list[tuple[str, int]]]:
    """Every host answers the host key check with `key` (None: cannot be reached); yields the
    (host, port) pairs the program asked. Nothing is dialled."""
    asked: list[tuple[str, int]] = []

    def scan(host: str, port: int, kind: str) -> list[str] | None:
        asked.append((host, port))
        return None if key is None else [key] if key.startswith(kind) else []

    original = host_keys.keyscan
    host_keys.keyscan = scan
    try:
        yield asked
    finally:
        host_keys.keyscan = original


@contextlib.contextmanager
def holding(versions: dict[str, str] | None = None) -> Iterator[None]:
    """Each API host answers the program's version question with `installed\nreplaced` from
    `versions` (host -> answer; default: nothing installed). Nothing is dialled."""

    def ask(target: SshTarget, command: str) -> str | None:
        return (versions or {}).get(target.host, "\n")

    original = installed_versions._ssh
    installed_versions._ssh = ask
    try:
        yield
    finally:
        installed_versions._ssh = original


# What the mocked RandomPassword returns: characters that need quoting everywhere.
GENERATED_PASSWORD = "gen$pw@x:y/z%"
# What the mocked RandomBytes returns: the SCRAM salt.
GENERATED_SALT = bytes(range(16))


class GlanceMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = GENERATED_PASSWORD
        if args.typ == "random:index/randomBytes:RandomBytes":
            state["base64"] = base64.b64encode(GENERATED_SALT).decode()
        if args.typ.startswith("command:"):
            state.setdefault("stdout", "")
            state.setdefault("stderr", "")
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "openstack:identity/getProject:getProject":
            return {"id": "service-project-id", "name": args.args["name"]}, []
        if args.token == "openstack:identity/getRole:getRole":
            return {"id": f"{args.args['name']}-role-id", "name": args.args["name"]}, []
        raise AssertionError(f"unexpected invoke {args.token}")


def stack_names() -> list[str]:
    """The committed stack files; the lab's (Pulumi.lab-*.yaml) are written per boot by the quickstart."""
    names = (path.name.removeprefix("Pulumi.").removesuffix(".yaml") for path in STACKS.glob("Pulumi.*.yaml"))
    return sorted(name for name in names if not name.startswith("lab-"))


def project_defaults() -> dict[str, Any]:
    """What the engine fills in from Pulumi.yaml for keys a stack does not set."""
    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    return {key.removeprefix("glance:"): spec["default"] for key, spec in schema.items() if "default" in spec}


# The cephx key a stack with an RBD store sets with `config set --secret --path`.
TEST_CEPH_KEY = "AQBmZXN0LWNlcGgta2V5LWZvci10aGUtdGVzdHM="


def stack_config(stack: str) -> dict[str, Any]:
    document = yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())
    config = {**project_defaults(), **{key.removeprefix("glance:"): value for key, value in document["config"].items()}}
    config["stores"] = [_with_test_keyring(item) for item in config["stores"]]
    return {**config, **pinned(config["controllerHost"])}


def _with_test_keyring(item: dict[str, Any]) -> dict[str, Any]:
    """The committed files leave store credentials to the operator, as they do passwords."""
    return {"keyring": TEST_CEPH_KEY, **item} if item.get("type") == "rbd" else item


def run_program(
    config: dict[str, Any],
    deployment: Deployment | None = None,
    main: Path = ROOT / "__main__.py",
    versions: dict[str, str] | None = None,
) -> Deployment:
    """The program (or `main`, a program that composes it) under the mocks, every host presenting its pin."""
    with presenting(TEST_HOST_KEY), holding(versions):
        return recording.run_program(config, GlanceMocks(), deployment, main)


def run_stack(stack: str, **overrides: Any) -> Deployment:
    return run_program({**stack_config(stack), **TEST_SECRETS, **overrides})
