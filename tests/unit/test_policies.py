"""The policy pack's rules, each shown firing on a bad stack and passing on a good one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from policy import glance_rules

ENDPOINT = "openstack:identity/endpointV3:EndpointV3"


def options(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def urn(stack: str, type_: str, name: str) -> str:
    return f"urn:pulumi:{stack}::glance::{type_}::{name}"


def resource_args(
    stack: str, type_: str, name: str, props: dict[str, Any], protect: bool = False
) -> ResourceValidationArgs:
    return ResourceValidationArgs(type_, props, urn(stack, type_, name), name, options(protect), None)


def stack_args(stack: str, endpoints: dict[str, str]) -> StackValidationArgs:
    resources = [
        PolicyResource(
            ENDPOINT,
            {"interface": i, "url": u},
            urn(stack, ENDPOINT, f"glance-endpoint-{i}"),
            f"glance-endpoint-{i}",
            options(),
            None,
            None,
            [],
            {},
        )
        for i, u in endpoints.items()
    ]
    return StackValidationArgs(resources)


def violations(check: Any, args: Any, **kwargs: Any) -> list[str]:
    found: list[str] = []
    check(args, lambda message, urn=None: found.append(message), **kwargs)
    return found


@pytest.mark.parametrize(
    ("stack", "production"),
    [
        ("prod", True),
        ("eu-prod", True),
        ("production.west", True),
        ("lab-mariadb", False),
        ("product", False),
        ("preprod", False),
    ],
)
def test_production_is_a_word_of_the_stack_name(stack: str, production: bool) -> None:
    assert glance_rules.is_production(stack) is production


def write_stack_file(project: Path, stack: str, config: dict[str, Any]) -> None:
    (project / "Pulumi.yaml").write_text("name: glance\nstackConfigDir: stacks\n")
    (project / "stacks").mkdir(exist_ok=True)
    (project / "stacks" / f"Pulumi.{stack}.yaml").write_text(json.dumps({"config": config}))


def test_no_plaintext_credentials(tmp_path: Path) -> None:
    args = stack_args("dev", {"public": "http://c:9292"})
    write_stack_file(
        tmp_path,
        "dev",
        {
            "glance:profile": "debian",
            "glance:dbAdminPassword": "hunter2",
            "glance:keystoneAdminPassword": {"secure": "v1:abc"},
        },
    )
    found = violations(glance_rules.no_plaintext_credentials, args, project=tmp_path)
    assert len(found) == 1 and "glance:dbAdminPassword is in plaintext in Pulumi.dev.yaml" in found[0]
    write_stack_file(tmp_path, "dev", {"glance:profile": "debian", "glance:dbAdminPassword": {"secure": "v1:x"}})
    assert violations(glance_rules.no_plaintext_credentials, args, project=tmp_path) == []
    # A store's credential counts too, with the --path form that makes it a secret.
    stores = [
        {"id": "s3", "type": "s3", "secretKey": "plain"},
        {"id": "ceph", "type": "rbd", "keyring": {"secure": "v1:k"}},
    ]
    write_stack_file(tmp_path, "dev", {"glance:profile": "debian", "glance:stores": stores})
    assert violations(glance_rules.no_plaintext_credentials, args, project=tmp_path) == [
        "glance:stores[0].secretKey is in plaintext in Pulumi.dev.yaml: "
        "set it with `pulumi config set --secret --path 'glance:stores[0].secretKey'`"
    ]
    # A stack whose file cannot be found is not waved through.
    other = stack_args("other", {"public": "http://c:9292"})
    found = violations(glance_rules.no_plaintext_credentials, other, project=tmp_path)
    assert found == [f"cannot check the credentials of stack other: {tmp_path}/stacks/Pulumi.other.yaml does not exist"]


DATA = {
    "glance-database": "mysql:index/database:Database",
    "glance-image-store-file": "command:remote:Command",
    "glance-2-image-store-nfs": "command:remote:Command",
    "glance-objects-container": "openstack:objectstorage/container:Container",
}


@pytest.mark.parametrize("name", sorted(DATA))
def test_production_data_protected(name: str) -> None:
    type_ = DATA[name]
    bad = resource_args("prod", type_, name, {}, protect=False)
    assert "set glance:protectData true" in violations(glance_rules.production_data_protected, bad)[0]
    assert violations(glance_rules.production_data_protected, resource_args("prod", type_, name, {}, True)) == []
    # Outside production a lab may let destroy take its data.
    assert violations(glance_rules.production_data_protected, resource_args("lab", type_, name, {})) == []


def test_production_https_endpoints() -> None:
    plain_http = {"interface": "public", "url": "http://glance.example:9292"}
    found = violations(glance_rules.production_https_endpoints, resource_args("prod", ENDPOINT, "e", plain_http))
    assert found == ["the public image endpoint http://glance.example:9292 is not https:// in a production stack"]
    https = {"interface": "public", "url": "https://glance.example"}
    assert violations(glance_rules.production_https_endpoints, resource_args("prod", ENDPOINT, "e", https)) == []
    assert violations(glance_rules.production_https_endpoints, resource_args("dev", ENDPOINT, "e", plain_http)) == []


def test_image_service_interfaces() -> None:
    two = stack_args("dev", {"public": "http://c:9292", "internal": "http://c:9292"})
    assert violations(glance_rules.image_service_interfaces, two) == ["the image service lacks its admin endpoint(s)"]
    three = stack_args("dev", {i: "http://c:9292" for i in ("public", "internal", "admin")})
    assert violations(glance_rules.image_service_interfaces, three) == []
