"""The unit tests' view of the program: test secrets, mocked resources, the stack files."""

from __future__ import annotations

import base64
from typing import Any

import pulumi
import yaml

from tests.standin import program
from tests.standin.program import ROOT, SECRET_SIG, SECRET_VALUE, Deployment, Registration, plain

__all__ = ["ROOT", "SECRET_SIG", "SECRET_VALUE", "Deployment", "Registration", "plain"]

STACKS = ROOT / "stacks"

TEST_SECRETS = {
    "sshPrivateKey": "-----TEST SSH KEY-----",
    "dbAdminPassword": "test-db-admin-pw",
    "keystoneAdminPassword": "test-keystone-admin-pw",
}
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
    return config


def _with_test_keyring(item: dict[str, Any]) -> dict[str, Any]:
    """The committed files leave store credentials to the operator, as they do passwords."""
    return {"keyring": TEST_CEPH_KEY, **item} if item.get("type") == "rbd" else item


def run_program(config: dict[str, Any], deployment: Deployment | None = None) -> Deployment:
    return program.run_program(config, GlanceMocks(), deployment)


def run_stack(stack: str, **overrides: Any) -> Deployment:
    return run_program({**stack_config(stack), **TEST_SECRETS, **overrides})
