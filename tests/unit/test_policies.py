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
PROVIDER = "pulumi:providers:openstack"
# Names that look like production: the environment-declared rule wants them to declare it.
PRODUCTION_NAMES = ["Production", "PROD", "prd", "live", "eu-prod2", "prod", "production.west"]
HTTPS_KEYSTONE = {
    "glance:keystoneUrl": "https://keystone.example:5000",
    "glance:keystoneAuthUrl": "https://keystone.example:5000",
    "glance:keystoneApiUrl": "https://keystone.example:5000/v3",
}


def options(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def urn(stack: str, type_: str, name: str) -> str:
    return f"urn:pulumi:{stack}::glance::{type_}::{name}"


def resource_args(
    stack: str, type_: str, name: str, props: dict[str, Any], protect: bool = False
) -> ResourceValidationArgs:
    return ResourceValidationArgs(type_, props, urn(stack, type_, name), name, options(protect), None)


def stack_args(stack: str, endpoints: dict[str, str] | None = None) -> StackValidationArgs:
    endpoints = {"public": "http://c:9292"} if endpoints is None else endpoints
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


def write_stack_file(project: Path, stack: str, config: dict[str, Any]) -> None:
    (project / "Pulumi.yaml").write_text("name: glance\nstackConfigDir: stacks\n")
    (project / "stacks").mkdir(exist_ok=True)
    (project / "stacks" / f"Pulumi.{stack}.yaml").write_text(json.dumps({"config": config}))


def environment(name: str, **config: Any) -> dict[str, Any]:
    return {"glance:profile": "debian", "glance:environment": name, **config}


@pytest.mark.parametrize(
    ("stack", "production"),
    [
        *((name, True) for name in PRODUCTION_NAMES),
        ("eu-live-3", True),
        ("lab-mariadb", False),
        ("product", False),
        ("preprod", False),
        ("delivery", False),
        ("dev", False),
    ],
)
def test_a_production_name_is_a_word_of_the_stack_name(stack: str, production: bool) -> None:
    assert glance_rules.named_like_production(stack) is production


def test_environment_must_be_declared(tmp_path: Path) -> None:
    write_stack_file(tmp_path, "dev", {"glance:profile": "debian"})
    found = violations(glance_rules.environment_declared, stack_args("dev"), project=tmp_path)
    assert found == [
        "stack dev does not declare glance:environment in Pulumi.dev.yaml: set it with "
        "`pulumi config set --stack dev glance:environment ENVIRONMENT` (production, staging, development, lab)"
    ]
    write_stack_file(tmp_path, "dev", environment("prod"))
    found = violations(glance_rules.environment_declared, stack_args("dev"), project=tmp_path)
    assert len(found) == 1 and "glance:environment of stack dev is 'prod'" in found[0]
    write_stack_file(tmp_path, "dev", environment("development"))
    assert violations(glance_rules.environment_declared, stack_args("dev"), project=tmp_path) == []
    found = violations(glance_rules.environment_declared, stack_args("gone"), project=tmp_path)
    assert found == [f"cannot check the environment of stack gone: {tmp_path}/stacks/Pulumi.gone.yaml does not exist"]


@pytest.mark.parametrize("stack", PRODUCTION_NAMES)
def test_a_stack_named_like_production_must_declare_production(tmp_path: Path, stack: str) -> None:
    write_stack_file(tmp_path, stack, environment("development"))
    found = violations(glance_rules.environment_declared, stack_args(stack), project=tmp_path)
    assert found == [
        f"stack {stack} is named like production but its glance:environment is development: set "
        f"`pulumi config set --stack {stack} glance:environment production`, or rename the stack"
    ]
    # Undeclared: both what is missing and the name's doubt.
    write_stack_file(tmp_path, stack, {"glance:profile": "debian"})
    found = violations(glance_rules.environment_declared, stack_args(stack), project=tmp_path)
    assert len(found) == 2 and "does not declare" in found[0] and "environment is unset" in found[1]
    write_stack_file(tmp_path, stack, environment("production"))
    assert violations(glance_rules.environment_declared, stack_args(stack), project=tmp_path) == []


def test_no_plaintext_credentials(tmp_path: Path) -> None:
    args = stack_args("dev")
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
    other = stack_args("other")
    found = violations(glance_rules.no_plaintext_credentials, other, project=tmp_path)
    assert found == [f"cannot check the credentials of stack other: {tmp_path}/stacks/Pulumi.other.yaml does not exist"]


def test_a_url_with_a_password_is_a_credential(tmp_path: Path) -> None:
    stores = [{"id": "s3", "type": "s3", "endpoint": "https://key:sesame@s3.example", "secretKey": {"secure": "v1"}}]
    write_stack_file(
        tmp_path,
        "dev",
        environment(
            "development", **{"glance:cirrosSource": "http://me:sesame@mirror/cirros.img", "glance:stores": stores}
        ),
    )
    found = violations(glance_rules.no_plaintext_credentials, stack_args("dev"), project=tmp_path)
    assert [message.split(" holds a URL with a password ")[0] for message in found] == [
        "glance:cirrosSource",
        "glance:stores[0].endpoint",
    ]
    assert "`pulumi config set --secret glance:cirrosSource`" in found[0]
    assert "--path 'glance:stores[0].endpoint'" in found[1]
    assert not any("sesame" in message for message in found)
    # A user without a password, or the same URL as a secret, is fine.
    write_stack_file(
        tmp_path,
        "dev",
        environment(
            "development", **{"glance:cirrosSource": "http://me@mirror/cirros.img", "glance:debug": {"secure": "v1"}}
        ),
    )
    assert violations(glance_rules.no_plaintext_credentials, stack_args("dev"), project=tmp_path) == []


def test_api_options_hold_no_credential(tmp_path: Path) -> None:
    options_ = [
        "DEFAULT.workers=2",
        "keystone_authtoken.memcache_secret_key=abc",
        "oslo_messaging_notifications.transport_url=rabbit://glance:sesame@mq:5672/",
        "profiler.hmac_keys=k1",
        "DEFAULT.show_image_direct_url=true",
    ]
    write_stack_file(tmp_path, "dev", environment("development", **{"glance:apiOptions": options_}))
    found = violations(glance_rules.no_plaintext_credentials, stack_args("dev"), project=tmp_path)
    # One message each (transport_url's URL is not reported a second time), without the value.
    assert [message.split(" holds a credential in plaintext")[0] for message in found] == [
        "glance:apiOptions[1] (keystone_authtoken.memcache_secret_key)",
        "glance:apiOptions[2] (oslo_messaging_notifications.transport_url)",
        "glance:apiOptions[3] (profiler.hmac_keys)",
    ]
    assert all("move the item to glance:apiSecretOptions" in message for message in found)
    assert not any("sesame" in message or "abc" in message for message in found)


def test_api_secret_options_are_a_secret(tmp_path: Path) -> None:
    items = ["oslo_messaging_notifications.transport_url=rabbit://glance:sesame@mq:5672/"]
    write_stack_file(tmp_path, "dev", environment("development", **{"glance:apiSecretOptions": items}))
    found = violations(glance_rules.no_plaintext_credentials, stack_args("dev"), project=tmp_path)
    assert found == [
        "glance:apiSecretOptions is in plaintext in Pulumi.dev.yaml: "
        "set it with `pulumi config set --secret glance:apiSecretOptions`"
    ]
    for secret in ({"secure": "v1:list"}, [{"secure": "v1:item"}]):
        write_stack_file(tmp_path, "dev", environment("development", **{"glance:apiSecretOptions": secret}))
        assert violations(glance_rules.no_plaintext_credentials, stack_args("dev"), project=tmp_path) == []


DATA = {
    "glance-database": "mysql:index/database:Database",
    "glance-image-store-file": "command:remote:Command",
    "glance-2-image-store-nfs": "command:remote:Command",
    "glance-objects-container": "openstack:objectstorage/container:Container",
}


@pytest.mark.parametrize("name", sorted(DATA))
def test_production_data_protected(tmp_path: Path, name: str) -> None:
    type_ = DATA[name]

    def check(stack: str, protect: bool) -> list[str]:
        args = resource_args(stack, type_, name, {}, protect)
        return violations(glance_rules.production_data_protected, args, project=tmp_path)

    # The declared environment decides, whatever the stack is called.
    write_stack_file(tmp_path, "eu-west", environment("production"))
    assert "set glance:protectData true" in check("eu-west", protect=False)[0]
    assert check("eu-west", protect=True) == []
    # Outside production a lab may let destroy take its data, even under a production-like name
    # (environment-declared refuses that name instead).
    write_stack_file(tmp_path, "prod", environment("development"))
    assert check("prod", protect=False) == []
    assert check("no-such-stack", protect=False) == []


def test_production_https_endpoints(tmp_path: Path) -> None:
    def check(stack: str, props: dict[str, Any]) -> list[str]:
        return violations(
            glance_rules.production_https_endpoints, resource_args(stack, ENDPOINT, "e", props), project=tmp_path
        )

    write_stack_file(tmp_path, "blue", environment("production"))
    write_stack_file(tmp_path, "prod", environment("development"))
    plain_http = {"interface": "public", "url": "http://glance.example:9292"}
    assert check("blue", plain_http) == [
        "the public image endpoint http://glance.example:9292 is not https:// in a production stack"
    ]
    assert check("blue", {"interface": "public", "url": "https://glance.example"}) == []
    assert check("prod", plain_http) == []


def test_production_keystone_provider_is_https(tmp_path: Path) -> None:
    """The provider's authUrl receives the Keystone admin password."""

    def check(stack: str, auth_url: Any) -> list[str]:
        props = {"authUrl": auth_url, "userName": "admin", "tenantName": "admin"}
        args = resource_args(stack, PROVIDER, "glance-keystone", props)
        return violations(glance_rules.production_https_endpoints, args, project=tmp_path)

    write_stack_file(tmp_path, "blue", environment("production"))
    write_stack_file(tmp_path, "lab", environment("lab"))
    assert check("blue", "http://admin:pw@controller:5000/v3") == [
        "the Keystone URL of provider glance-keystone (authUrl) http://controller:5000/v3 is not https:// "
        "in a production stack"
    ]
    assert check("blue", "https://keystone.example/v3") == []
    assert check("lab", "http://controller:5000/v3") == []
    # Another resource type's authUrl is not this rule's.
    other = resource_args("blue", "openstack:index:Other", "x", {"authUrl": "http://controller:5000/v3"})
    assert violations(glance_rules.production_https_endpoints, other, project=tmp_path) == []


def test_production_https_config(tmp_path: Path) -> None:
    def check(config: dict[str, Any]) -> list[str]:
        write_stack_file(tmp_path, "blue", config)
        return violations(glance_rules.production_https_config, stack_args("blue"), project=tmp_path)

    assert check(environment("production", **HTTPS_KEYSTONE)) == []
    # keystoneApiUrl unset is keystoneAuthUrl + /v3: https when that is.
    https_auth = {key: value for key, value in HTTPS_KEYSTONE.items() if key != "glance:keystoneApiUrl"}
    assert check(environment("production", **https_auth)) == []
    assert check(environment("production", **{**HTTPS_KEYSTONE, "glance:keystoneApiUrl": "http://c:5000/v3"})) == [
        "glance:keystoneApiUrl http://c:5000/v3 is not https:// in a production stack"
    ]
    # Unset, each Keystone URL is an http:// default.
    found = check(environment("production"))
    assert [message.split(" is unset")[0] for message in found] == [
        "glance:keystoneUrl",
        "glance:keystoneAuthUrl",
        "glance:keystoneApiUrl",
    ]
    assert "defaults to http://<controllerHost>:5000" in found[0]
    # The stores' own URLs a key travels over.
    stores = [
        {"id": "swift", "type": "swift", "authUrl": "http://keystone:5000/v3"},
        {"id": "s3", "type": "s3", "endpoint": "http://s3.example", "secretKey": {"secure": "v1"}},
        {"id": "s3b", "type": "s3", "endpoint": "https://s3.example", "secretKey": {"secure": "v1"}},
        {"id": "file", "type": "file", "path": "/srv/images"},
    ]
    assert check(environment("production", **HTTPS_KEYSTONE, **{"glance:stores": stores})) == [
        "glance:stores[0].authUrl http://keystone:5000/v3 is not https:// in a production stack",
        "glance:stores[1].endpoint http://s3.example is not https:// in a production stack",
    ]
    # Not production: no rule, whatever the name.
    assert check(environment("development", **{"glance:stores": stores})) == []


def test_production_host_keys_verified(tmp_path: Path) -> None:
    def check(config: dict[str, Any]) -> list[str]:
        write_stack_file(tmp_path, "blue", config)
        return violations(glance_rules.production_host_keys_verified, stack_args("blue"), project=tmp_path)

    found = check(environment("production", **{"glance:insecureIgnoreHostKeys": True}))
    assert len(found) == 1 and "glance:insecureIgnoreHostKeys is true in Pulumi.blue.yaml" in found[0]
    assert len(check(environment("production", **{"glance:insecureIgnoreHostKeys": "true"}))) == 1
    assert check(environment("production", **{"glance:insecureIgnoreHostKeys": False})) == []
    assert check(environment("lab", **{"glance:insecureIgnoreHostKeys": True})) == []


def test_production_tls_verified(tmp_path: Path) -> None:
    def check(config: dict[str, Any], provider: dict[str, Any] | None = None) -> list[str]:
        write_stack_file(tmp_path, "blue", config)
        args = stack_args("blue")
        if provider is not None:
            keystone = resource_args("blue", PROVIDER, "glance-keystone", provider)
            args.resources.append(
                PolicyResource(PROVIDER, keystone.props, keystone.urn, keystone.name, options(), None, None, [], {})
            )
        return violations(glance_rules.production_tls_verified, args, project=tmp_path)

    switches = ["glance_store.swift_store_auth_insecure=True", "keystone_authtoken.insecure = yes"]
    found = check(environment("production", **{"glance:apiOptions": [*switches, "DEFAULT.workers=2"]}))
    assert found == [
        "glance:apiOptions[0] (glance_store.swift_store_auth_insecure) turns TLS verification off in "
        "Pulumi.blue.yaml: a production stack verifies every certificate; trust a private CA with glance:tlsCaBundle",
        "glance:apiOptions[1] (keystone_authtoken.insecure) turns TLS verification off in Pulumi.blue.yaml: a "
        "production stack verifies every certificate; trust a private CA with glance:tlsCaBundle",
    ]
    # Set false, or not in production, or an option that only ends like one: nothing to refuse.
    assert check(environment("production", **{"glance:apiOptions": ["glance_store.cinder_api_insecure=False"]})) == []
    assert check(environment("production", **{"glance:apiOptions": ["DEFAULT.notinsecure=True"]})) == []
    assert check(environment("lab", **{"glance:apiOptions": switches})) == []
    # A composed program's provider that skips verification.
    assert check(environment("production"), {"authUrl": "https://k/v3", "insecure": True}) == [
        "provider glance-keystone sets insecure, which turns TLS verification off: a production stack verifies "
        "every certificate; trust a private CA with glance:tlsCaBundle"
    ]
    assert check(environment("production"), {"authUrl": "https://k/v3", "cacertFile": "PEM"}) == []
    assert check(environment("lab"), {"authUrl": "https://k/v3", "insecure": True}) == []


def test_image_service_interfaces() -> None:
    two = stack_args("dev", {"public": "http://c:9292", "internal": "http://c:9292"})
    assert violations(glance_rules.image_service_interfaces, two) == ["the image service lacks its admin endpoint(s)"]
    three = stack_args("dev", {i: "http://c:9292" for i in ("public", "internal", "admin")})
    assert violations(glance_rules.image_service_interfaces, three) == []


def test_the_pack_has_every_rule() -> None:
    names = [policy.name for policy in glance_rules.POLICIES]
    assert names == [
        "environment-declared",
        "no-plaintext-credentials",
        "production-data-protected",
        "production-https-endpoints",
        "production-https-config",
        "production-host-keys-verified",
        "production-tls-verified",
        "image-service-interfaces",
    ]
