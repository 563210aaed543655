"""Every stack file in stacks/, run through the real program under mocks."""

from __future__ import annotations

import configparser
import json
from urllib.parse import unquote, urlsplit

import pytest

from components.stack_input import GUIDE_CIRROS_MD5
from tests.unit import guides
from tests.unit.harness import (
    GENERATED_PASSWORD,
    TEST_SECRETS,
    Deployment,
    Registration,
    plain,
    run_stack,
    stack_names,
)

STACKS = stack_names()
GUIDE_SECRETS = {
    "dbPassword": guides.DB_PASS,
    "glancePassword": guides.GLANCE_PASS,
    "limitsPassword": guides.LIMITS_PASS,
}


@pytest.fixture(scope="module", params=STACKS)
def deployment(request: pytest.FixtureRequest) -> Deployment:
    return run_stack(request.param)


def parse_ini(*texts: str) -> configparser.ConfigParser:
    """The files read one after another, as oslo.config reads a main file and its drop-ins."""
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    for text in texts:
        parser.read_string(text)
    return parser


def config_text(deployment: Deployment, name: str) -> str:
    return str(plain(deployment.named(name).inputs["stdin"]))


def api_config(deployment: Deployment) -> configparser.ConfigParser:
    """glance-api's effective options: glance-api.conf, then the credentials drop-in if any."""
    texts = [config_text(deployment, "glance-config-glance-api")]
    if "glance-config-credentials" in {r.name for r in deployment.registrations}:
        texts.append(config_text(deployment, "glance-config-credentials"))
    return parse_ini(*texts)


def test_the_three_variants_exist() -> None:
    assert {"clearlinux", "rhel", "debian"} <= set(STACKS)


def test_components_use_glance_tokens_and_own_their_children(deployment: Deployment) -> None:
    components = {r.urn: r for r in deployment.registrations if not r.custom}
    assert {r.type for r in components.values()} == {
        "glance:service:GlanceService",
        "glance:passwords:ServicePasswords",
        "glance:database:GlanceDatabase",
        "glance:identity:GlanceIdentity",
        "glance:node:GlanceNode",
        "glance:image:CirrosImage",
        "glance:object_store:SwiftContainers",
    }
    for resource in deployment.registrations:
        if resource.custom and not resource.type.startswith("pulumi:providers:"):
            assert resource.parent in components, f"{resource.name} is not parented to a component"
        assert resource.name.startswith("glance"), resource.name


def test_identity_follows_the_guide(deployment: Deployment) -> None:
    user = deployment.named("glance-user")
    assert user.inputs["name"] == "glance" and user.inputs["domainId"] == "default"
    assignment = deployment.named("glance-service-admin")
    assert assignment.inputs["projectId"] == "service-project-id"
    assert assignment.inputs["roleId"] == "admin-role-id"
    assert assignment.inputs["userId"] == "glance-user-id"
    service = deployment.named("glance-service")
    assert (service.inputs["name"], service.inputs["type"]) == ("glance", "image")
    endpoints = {
        r.inputs["interface"]: r.inputs for r in deployment.of_type("openstack:identity/endpointV3:EndpointV3")
    }
    assert set(endpoints) == {"public", "internal", "admin"}
    for endpoint in endpoints.values():
        assert endpoint["url"] == "http://controller:9292"
        assert endpoint["endpointRegion"] == "RegionOne"
        assert endpoint["serviceId"] == "glance-service-id"


def test_image_is_the_guides_cirros(deployment: Deployment) -> None:
    image = deployment.named("glance-image").inputs
    assert (image["name"], image["diskFormat"], image["containerFormat"], image["visibility"]) == (
        "cirros",
        "qcow2",
        "bare",
        "public",
    )
    # The guide's URL, downloaded and checked against its MD5 before the upload, from the cache file.
    source = json.loads(deployment.named("glance-image-source").inputs["stdin"])
    assert source["url"].endswith("/0.3.4/cirros-0.3.4-x86_64-disk.img")
    assert (source["algorithm"], source["checksum"]) == ("md5", GUIDE_CIRROS_MD5)
    assert image["localFilePath"] == source["path"] and "imageSourceUrl" not in image
    assert deployment.depends_on("glance-image", "glance-image-source")


def test_dependency_order(deployment: Deployment) -> None:
    database = "glance-database"
    assert deployment.depends_on("glance-db-sync", database)
    assert deployment.depends_on("glance-db-sync", "glance-endpoint-admin")
    assert deployment.depends_on("glance-db-sync", "glance-service-admin")
    assert deployment.depends_on("glance-db-sync", "glance-config-glance-api")
    assert deployment.depends_on("glance-config-glance-api", "glance-install")
    assert deployment.depends_on("glance-units", "glance-db-sync")
    assert deployment.depends_on("glance-restart", "glance-units")
    assert deployment.depends_on("glance-ready", "glance-restart")
    assert deployment.depends_on("glance-image", "glance-ready")
    assert not deployment.depends_on("glance-install", database)


def test_no_secret_in_any_command_line(deployment: Deployment) -> None:
    secrets = [*TEST_SECRETS.values(), GENERATED_PASSWORD]
    for command in deployment.registrations:
        if command.type.startswith("command:"):
            for field in ("create", "update", "delete"):
                text = str(command.inputs.get(field) or "")
                assert not any(secret in text for secret in secrets), f"{command.name}.{field}"


def test_credentials_travel_as_secrets(deployment: Deployment) -> None:
    for command in deployment.of_type("command:remote:Command"):
        assert "connection" in command.secret_inputs, command.name
    for name in ("glance-user",):
        assert "password" in deployment.named(name).secret_inputs
    for provider in deployment.registrations:
        if provider.type in ("pulumi:providers:openstack", "pulumi:providers:mysql", "pulumi:providers:postgresql"):
            assert "password" in provider.secret_inputs, provider.type
    names = {r.name for r in deployment.registrations}
    credentials = "glance-config-credentials" if "glance-config-credentials" in names else "glance-config-glance-api"
    assert "stdin" in deployment.named(credentials).secret_inputs
    for name in (credentials, "glance-db-sync", "glance-ready"):
        command = deployment.named(name)
        assert {"stdout", "stderr"} <= set(command.additional_secret_outputs), name
        assert command.inputs["logging"] == "none", name
    assert "stdin" in deployment.named("glance-ready").secret_inputs


def file_stores(deployment: Deployment) -> list[Registration]:
    return [r for r in deployment.registrations if r.name.startswith("glance-image-store-")]


def test_data_is_protected_by_default(deployment: Deployment) -> None:
    assert deployment.named("glance-database").protect
    assert file_stores(deployment) and all(store.protect for store in file_stores(deployment))
    assert not deployment.named("glance-install").protect


@pytest.mark.parametrize("stack", STACKS)
def test_protection_can_be_switched_off(stack: str) -> None:
    deployment = run_stack(stack, protectData=False)
    assert not deployment.named("glance-database").protect
    assert file_stores(deployment) and not any(store.protect for store in file_stores(deployment))


def test_restart_and_ownership_follow_the_config_content(deployment: Deployment) -> None:
    restart = deployment.named("glance-restart").inputs["triggers"]
    ownership = deployment.named("glance-ownership").inputs["triggers"]
    assert restart == ownership and len(plain(restart)[0]) == 64
    assert "triggers" not in deployment.named("glance-db-sync").inputs


def test_option_change_touches_config_and_restart_only() -> None:
    before = run_stack("debian")
    after = run_stack("debian", debug=True)
    inputs_before = {(r.type, r.name): r.inputs for r in before.registrations}
    changed = {r.name for r in after.registrations if r.inputs != inputs_before[(r.type, r.name)]}
    assert changed == {"glance-config-glance-api", "glance-ownership", "glance-reload"}


def test_clear_linux_follows_its_guide() -> None:
    deployment = run_stack("clearlinux", **GUIDE_SECRETS)
    install = deployment.named("glance-install").inputs["create"]
    assert guides.CLEAR_LINUX_PACKAGES in install
    assert_sections(api_config(deployment), guides.CLEAR_LINUX_API)
    assert_sections(parse_ini(config_text(deployment, "glance-config-glance-registry")), guides.CLEAR_LINUX_REGISTRY)
    assert "systemctl restart update-triggers.target" in deployment.named("glance-ownership").inputs["create"]
    units = deployment.named("glance-units").inputs["create"]
    assert "systemctl enable --now glance-api.service glance-registry.service" in units
    assert 'su -s /bin/sh -c "glance-manage db_sync" glance' in deployment.named("glance-db-sync").inputs["create"]
    assert "export OS_IMAGE_API_VERSION=2" in deployment.named("glance-image-api-version").inputs["create"]
    assert deployment.of_type("mysql:index/database:Database")
    assert not deployment.of_type("openstack:identity/registeredLimitV3:RegisteredLimitV3")
    assert deployment.named("glance-service").inputs["description"] == "OpenStack Image service"


def test_rhel_follows_its_notes() -> None:
    deployment = run_stack("rhel", **GUIDE_SECRETS)
    install = deployment.named("glance-install").inputs["create"]
    crb, yum = (install.index(step) for step in guides.RHEL_PACKAGE_STEPS)
    assert crb < yum
    assert_sections(api_config(deployment), guides.RHEL_API)
    assert "chown root:glance /etc/glance/glance-api.conf" in deployment.named("glance-ownership").inputs["create"]
    assert "chmod 0640" in deployment.named("glance-ownership").inputs["create"]
    units = deployment.named("glance-units").inputs["create"]
    assert "systemctl enable --now openstack-glance-api.service" in units
    hba = deployment.named("glance-pg-hba").inputs
    assert "host    glance    glance    controller    md5" in hba["create"]
    assert "systemctl reload postgresql.service" in hba["create"]
    assert "glance-pulumi glance/glance" in hba["delete"]
    role = deployment.named("glance-role").inputs
    assert "runuser -u postgres -- psql" in role["create"] and "DROP ROLE IF EXISTS" in role["delete"]
    assert deployment.named("glance-database").inputs["owner"] == "glance"
    limits = {
        r.inputs["resourceName"]: r.inputs
        for r in deployment.of_type("openstack:identity/registeredLimitV3:RegisteredLimitV3")
    }
    assert set(limits) == {"image_size_total", "image_stage_total", "image_count_total", "image_count_uploading"}
    assert all(
        limit["serviceId"] == "glance-service-id" and limit["region"] == "RegionOne" for limit in limits.values()
    )
    reader = deployment.named("glance-limits-system-reader").inputs
    assert '"role": "reader"' in plain(reader["stdin"]) and "grant" in reader["create"] and "revoke" in reader["delete"]
    assert deployment.named("glance-limits-user").inputs["name"] == "service-oslo"
    assert deployment.named("glance-service").inputs["description"] == "OpenStack Image"
    for limit in limits:
        assert deployment.depends_on("glance-restart", f"glance-limit-{limit.replace('_', '-')}")


def test_debian_installs_its_own_package() -> None:
    deployment = run_stack("debian")
    install = deployment.named("glance-install").inputs["create"]
    assert "install -y glance-api python3-pymysql" in install
    # Destroy purges only the packages the install step recorded as its own.
    uninstall = deployment.named("glance-install").inputs["delete"]
    assert "installed-packages" in uninstall and '$apt_get purge -y $(cat "$ours.unneeded")' in uninstall
    units = deployment.named("glance-units").inputs
    assert "systemctl enable --now glance-api.service" in units["create"]
    assert "systemctl disable --now glance-api.service" in units["delete"]
    api = api_config(deployment)
    assert api["database"]["connection"].startswith("mysql+pymysql://glance:")
    assert api["keystone_authtoken"]["auth_url"] == "http://controller:5000"
    assert api["glance_store"]["filesystem_store_datadir"] == "/var/lib/glance/images/"
    assert not deployment.of_type("openstack:identity/registeredLimitV3:RegisteredLimitV3")


def test_debian_can_switch_to_postgresql() -> None:
    deployment = run_stack("debian", dbEngine="postgresql")
    assert "python3-psycopg2" in deployment.named("glance-install").inputs["create"]
    assert "/etc/postgresql/15/main/pg_hba.conf" in deployment.named("glance-pg-hba").inputs["create"]
    api = api_config(deployment)
    assert api["database"]["connection"].startswith("postgresql+psycopg2://")
    assert not deployment.of_type("mysql:index/database:Database")


def test_generated_passwords_survive_quoting() -> None:
    deployment = run_stack("rhel")
    api = api_config(deployment)
    url = urlsplit(api["database"]["connection"])
    assert unquote(url.password or "") == GENERATED_PASSWORD
    # oslo.config reads $$ as a literal dollar.
    assert api["keystone_authtoken"]["password"].replace("$$", "$") == GENERATED_PASSWORD
    assert api["oslo_limit"]["password"].replace("$$", "$") == GENERATED_PASSWORD


def assert_sections(rendered: configparser.ConfigParser, guide: dict[str, dict[str, str]]) -> None:
    for section, options in guide.items():
        assert rendered.has_section(section), f"[{section}] missing"
        for option, expected in options.items():
            actual = rendered[section].get(option)
            assert actual is not None, f"[{section}] {option} missing"
            if option == "connection":
                assert same_database_url(actual, expected), (actual, expected)
            else:
                assert actual.replace("$$", "$") == expected, (section, option, actual, expected)


def same_database_url(actual: str, expected: str) -> bool:
    ours, theirs = urlsplit(actual), urlsplit(expected)
    default_port = {"mysql": 3306, "postgresql": 5432}[theirs.scheme.split("+")[0]]
    return (
        ours.scheme == theirs.scheme
        and ours.username == theirs.username
        and unquote(ours.password or "") == theirs.password
        and ours.hostname == theirs.hostname
        and (ours.port or default_port) == (theirs.port or default_port)
        and ours.path == theirs.path
    )
