"""Bad stack config fails with one message naming the key and what is allowed,
before any resource is registered; good config resolves to the guides' defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.settings import ConfigError, load_settings
from tests.unit.harness import TEST_SECRETS, Deployment, pinned, project_defaults, run_program, stack_config

SECRET = frozenset(TEST_SECRETS)
# sshHostKeys as the engine hands it over: JSON text.
PIN_CONTROLLER = {"sshHostKeys": json.dumps(pinned("controller")["sshHostKeys"])}
PIN_LOCAL = {"sshHostKeys": json.dumps(pinned("127.0.0.1")["sshHostKeys"])}

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("unknown profile", {"profile": "ubuntu"}, "glance:profile Input should be 'clearlinux', 'rhel' or 'debian'"),
    ("unknown engine", {"dbEngine": "oracle"}, "glance:dbEngine Input should be 'mysql' or 'postgresql'"),
    ("typo in a key", {"contollerHost": "x"}, "glance:contollerHost is not a known key"),
    ("port not a number", {"sshPort": "twenty-two"}, "glance:sshPort Input should be a valid integer"),
    ("port out of range", {"sshPort": "70000"}, "glance:sshPort Input should be less than or equal to 65535"),
    ("debug not a boolean", {"debug": "sometimes"}, "glance:debug Input should be a valid boolean"),
    ("malformed endpoint URL", {"publicUrl": "controller:9292"}, "glance:publicUrl must be an http:// or https:// URL"),
    ("endpoint URL with other scheme", {"internalUrl": "ftp://controller"}, "glance:internalUrl must be an http://"),
    ("malformed Keystone URL", {"keystoneAuthUrl": "http://"}, "glance:keystoneAuthUrl must be an http:// or https://"),
    ("relative store path", {"imageStorePath": "var/lib/glance"}, "glance:imageStorePath must be an absolute path"),
    (
        "several API hosts with a file store",
        {"apiHosts": ["c1", "c2"]},
        "glance:apiHosts 2 hosts would each keep images in their own file store",
    ),
    ("host with a scheme", {"controllerHost": "http://controller"}, "glance:controllerHost must be a host name"),
    (
        "pg_hba IP without prefix",
        {"dbEngine": "postgresql", "pgHbaAddress": "10.0.0.11"},
        "glance:pgHbaAddress an IP address needs a prefix length",
    ),
    (
        "pg_hba option on mysql",
        {"dbEngine": "mysql", "pgHbaPath": "/etc/pg_hba.conf"},
        "glance:pgHbaPath only used with dbEngine postgresql",
    ),
    (
        "unknown pg_hba method",
        {"dbEngine": "postgresql", "pgHbaMethod": "trust"},
        "glance:pgHbaMethod Input should be 'md5' or 'scram-sha-256'",
    ),
    (
        "limits on Liberty",
        {"profile": "clearlinux", "keystoneLimits": True},
        "glance:keystoneLimits Keystone unified limits need Glance Zed",
    ),
    ("negative limit", {"imageCountTotal": -1}, "glance:imageCountTotal Input should be greater than or equal to 0"),
    (
        "image source neither URL nor path",
        {"cirrosSource": "cirros.img"},
        "glance:cirrosSource must be an http(s) URL or an absolute path",
    ),
    (
        "api option without a section",
        {"apiOptions": ["debug=true"]},
        "glance:apiOptions[0] items must look like section.option=value",
    ),
    (
        "api options not a list",
        {"apiOptions": {"DEFAULT": {"debug": True}}},
        "glance:apiOptions Input should be a valid list",
    ),
    (
        "wrong type for a list",
        {"memcachedServers": "controller:11211"},
        "glance:memcachedServers Input should be a valid list",
    ),
]


def base_config() -> dict[str, Any]:
    return {**stack_config("debian"), **TEST_SECRETS}


@pytest.mark.parametrize(("change", "message"), [(c, m) for _, c, m in INVALID], ids=[i for i, _, _ in INVALID])
def test_invalid_config_is_refused_before_any_resource(change: dict[str, Any], message: str) -> None:
    config = {**base_config(), **change}
    deployment = Deployment()
    with pytest.raises(ConfigError) as refused:
        run_program(config, deployment=deployment)
    assert message in str(refused.value)
    assert str(refused.value).startswith("invalid stack config:")
    assert deployment.registrations == []


@pytest.mark.parametrize("key", ["sshPrivateKey", "dbAdminPassword", "keystoneAdminPassword"])
def test_missing_required_secret_names_the_key(key: str) -> None:
    config = {k: v for k, v in base_config().items() if k != key}
    with pytest.raises(ConfigError, match=f"glance:{key} is required \\(set it with `pulumi config set --secret`\\)"):
        load_settings({k: str(v) for k, v in config.items() if isinstance(v, str)}, SECRET)


def test_credential_in_plaintext_is_refused() -> None:
    raw = {"profile": "debian", **TEST_SECRETS}
    with pytest.raises(
        ConfigError, match=r"glance:dbAdminPassword holds a credential: set it with `pulumi config set --secret"
    ):
        load_settings(raw, SECRET - {"dbAdminPassword"})


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"profile": "debian", "sshPort": "x", "imageStorePath": "rel", **TEST_SECRETS}, SECRET)
    assert "glance:sshPort" in str(refused.value) and "glance:imageStorePath" in str(refused.value)


def test_defaults_follow_the_profile() -> None:
    clear, rhel, debian = (
        load_settings(
            {**raw({**project_defaults(), **pinned("controller")}), "profile": profile, **TEST_SECRETS}, SECRET
        )
        for profile in ("clearlinux", "rhel", "debian")
    )
    assert (clear.database.engine, rhel.database.engine, debian.database.engine) == ("mysql", "postgresql", "mysql")
    assert clear.keystone.auth_url == "http://controller:35357"
    assert rhel.keystone.auth_url == debian.keystone.auth_url == "http://controller:5000"
    assert clear.glance.memcached_servers == rhel.glance.memcached_servers == ()
    assert rhel.limits is None and clear.limits is None and debian.limits is None
    assert (rhel.database.port, debian.database.port) == (5432, 3306)
    assert debian.glance.endpoints.public == "http://controller:9292"
    assert [host.ssh.host for host in debian.api_hosts] == ["controller"]
    assert rhel.database.pg_hba is not None and rhel.database.pg_hba.path == "/var/lib/pgsql/data/pg_hba.conf"
    assert debian.database.admin_user == "root" and rhel.database.admin_user == "postgres"


def raw(values: dict[str, Any]) -> dict[str, str]:
    """Values as the engine hands them to the program: text, structured ones as JSON."""
    return {key: json.dumps(value) if not isinstance(value, str) else value for key, value in values.items()}


def test_stack_files_set_what_their_guides_set() -> None:
    rhel = load_settings(raw({**stack_config("rhel"), **TEST_SECRETS}), SECRET)
    debian = load_settings(raw({**stack_config("debian"), **TEST_SECRETS}), SECRET)
    assert rhel.limits is not None and rhel.glance.memcached_servers == ("controller:11211",)
    assert debian.glance.memcached_servers == ("controller:11211",) and debian.limits is None


def test_ip_controller_gets_a_host_prefix_in_pg_hba() -> None:
    settings = load_settings(
        {"profile": "debian", "dbEngine": "postgresql", "controllerHost": "127.0.0.1", **PIN_LOCAL, **TEST_SECRETS},
        SECRET,
    )
    assert settings.database.pg_hba is not None and settings.database.pg_hba.address == "127.0.0.1/32"


def test_secrets_do_not_leak_through_repr() -> None:
    settings = load_settings({"profile": "debian", **PIN_CONTROLLER, **TEST_SECRETS}, SECRET)
    assert not any(secret in repr(settings) for secret in TEST_SECRETS.values())


def test_local_image_file_is_uploaded_not_downloaded(tmp_path: Path) -> None:
    image = tmp_path / "cirros.qcow2"
    image.write_bytes(b"qcow")
    settings = load_settings(
        {"profile": "debian", "cirrosSource": str(image), **PIN_CONTROLLER, **TEST_SECRETS}, SECRET
    )
    assert (settings.image.local_path, settings.image.source_url) == (str(image), None)
    assert settings.image.checksum is None and settings.image.visibility == "public"


def test_project_schema_and_readme_document_every_key() -> None:
    import yaml

    from components.stack_input import KEYS, SECRET_KEYS, StackConfig
    from tests.unit.harness import ROOT

    keys = {field.alias or name for name, field in StackConfig.model_fields.items()}
    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert {key.removeprefix("glance:") for key in schema} == keys
    # Types and defaults as declared: a key without a default of its own declares its type's empty value.
    assert {
        key.removeprefix("glance:"): (spec["type"], spec.get("items", {}).get("type"), spec.get("default"))
        for key, spec in schema.items()
    } == {name: (key.type, key.items, None if key.required else key.schema_default) for name, key in KEYS.items()}
    assert {
        "sshPrivateKey",
        "dbAdminPassword",
        "dbPassword",
        "keystoneAdminPassword",
        "glancePassword",
        "limitsPassword",
        "apiSecretOptions",
        "tlsPrivateKey",
    } == SECRET_KEYS
    declared_secret = {key.removeprefix("glance:") for key, spec in schema.items() if spec.get("secret")}
    # Pulumi refuses a default for a secret key, so only the required credentials are declared secret.
    assert declared_secret == {
        key for key in SECRET_KEYS if f"glance:{key}" in schema and "default" not in schema[f"glance:{key}"]
    }
    assert declared_secret == {"sshPrivateKey", "dbAdminPassword", "keystoneAdminPassword"}
    readme = (ROOT / "README.md").read_text()
    assert all(f"`glance:{key}`" in readme for key in keys)


def test_generated_schema_docs_match_the_schema() -> None:
    """Pulumi.yaml's config block and the README's key table are what the schema generates."""
    from components import schema_docs

    stale = [path.name for path in schema_docs.stale()]
    assert not stale, f"{', '.join(stale)} differ from components/stack_input.py: run `{schema_docs.COMMAND}`"


@pytest.mark.parametrize(
    ("key", "value", "unset"),
    [
        ("dbPort", "0", True),
        ("dbPort", 0, True),
        ("dbPort", False, False),
        ("apiHosts", "[]", True),
        ("apiHosts", [], True),
        ("dbHost", "", True),
        # A string key's "0" or "[]" is a value (a password "0").
        ("dbPassword", "0", False),
        ("dbPassword", "[]", False),
    ],
)
def test_the_empty_default_of_a_key_reads_as_unset(key: str, value: Any, unset: bool) -> None:
    from components.stack_input import KEYS

    assert KEYS[key].unset_by(value) is unset
