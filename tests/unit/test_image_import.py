"""Interoperable image import: every option's rendering, parsed back, and every validation message."""

from __future__ import annotations

import configparser
from typing import Any

import pytest

from components.rendering import API_CONF
from components.settings import ConfigError, Settings
from tests.unit.harness import TEST_CEPH_KEY, TEST_SECRETS, Deployment, pinned, plain, run_program, stack_config
from tests.unit.test_stores import files_of, load

ZED_DEFAULT_METHODS = "[glance-direct,web-download,copy-image]"
HOSTS = ["10.0.0.11", "10.0.0.12"]
LB = "https://glance.example:9292"
SWIFT = {"id": "objects", "type": "swift"}
RBD = {"id": "ceph", "type": "rbd", "monHosts": ["mon1:6789", "[fd00::5]:3300"], "keyring": TEST_CEPH_KEY}


def conf(settings: Settings) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section="__unused__")
    parser.read_string(files_of(settings)[API_CONF])
    return parser


def rendered(profile: str = "debian", **keys: Any) -> configparser.ConfigParser:
    return conf(load(profile, **keys))


def two_hosts(deployment: Deployment | None = None, **overrides: Any) -> Deployment:
    config = {**stack_config("debian-swift"), **TEST_SECRETS, **pinned(*HOSTS), "apiHosts": HOSTS, "publicUrl": LB}
    # The load balancer ends TLS; the hosts serve plain http.
    config |= {
        "internalUrl": "",
        "adminUrl": "",
        "stores": [SWIFT],
        "defaultStore": "",
        "tlsTermination": "loadBalancer",
    }
    return run_program({**config, **overrides}, deployment)


def host_conf(deployment: Deployment, node: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section="__unused__")
    parser.read_string(plain(deployment.named(f"{node}-config-glance-api").inputs["stdin"]))
    return parser


# ---- rendering --------------------------------------------------------------------------------


def test_zed_enables_the_release_default_methods() -> None:
    assert rendered()["DEFAULT"]["enabled_import_methods"] == ZED_DEFAULT_METHODS


def test_the_methods_given_are_enabled_in_their_order() -> None:
    parsed = rendered(importMethods=["copy-image", "glance-direct"])
    assert parsed["DEFAULT"]["enabled_import_methods"] == "[copy-image,glance-direct]"
    # Without web-download there is nothing to filter.
    assert not parsed.has_section("import_filtering_opts")


def test_a_single_store_zed_stack_stages_in_glances_own_directory() -> None:
    parsed = rendered()
    assert parsed["DEFAULT"]["node_staging_uri"] == "file:///var/lib/glance/staging"
    assert not parsed.has_section("os_glance_staging_store")


def test_a_multi_store_stack_stages_in_the_reserved_staging_store() -> None:
    parsed = rendered(stores=[SWIFT])
    assert parsed["os_glance_staging_store"]["filesystem_store_datadir"] == "/var/lib/glance/staging/"
    assert "node_staging_uri" not in parsed["DEFAULT"]


def test_every_zed_stack_makes_the_staging_directory() -> None:
    for stack in ("debian", "debian-swift"):
        step = run_program({**stack_config(stack), **TEST_SECRETS}).named("glance-work-dirs")
        assert "/var/lib/glance/staging" in step.inputs["create"], stack


def test_liberty_renders_no_import_option_and_makes_no_staging_directory() -> None:
    parsed = rendered("clearlinux")
    # Its [DEFAULT] would be empty, so it is left out.
    assert not {"DEFAULT", "image_import_opts", "import_filtering_opts"} & set(parsed.sections())
    names = [r.name for r in run_program({**stack_config("clearlinux"), **TEST_SECRETS}).registrations]
    assert "glance-work-dirs" not in names


def test_image_conversion_renders_its_output_format_and_installs_qemu_img() -> None:
    parsed = rendered(importPlugins=[{"name": "image_conversion", "outputFormat": "qcow2"}])
    assert parsed["image_import_opts"]["image_import_plugins"] == "[image_conversion]"
    assert parsed["image_conversion"]["output_format"] == "qcow2"
    with_plugin = run_program(
        {**stack_config("debian"), **TEST_SECRETS, "importPlugins": [{"name": "image_conversion"}]}
    )
    assert "qemu-utils" in with_plugin.named("glance-install").inputs["create"]
    rhel = run_program({**stack_config("rhel"), **TEST_SECRETS, "importPlugins": [{"name": "image_conversion"}]})
    assert "qemu-img" in rhel.named("glance-install").inputs["create"]
    without = run_program({**stack_config("debian"), **TEST_SECRETS})
    assert "qemu-utils" not in without.named("glance-install").inputs["create"]


def test_image_conversion_defaults_to_raw() -> None:
    assert rendered(importPlugins=[{"name": "image_conversion"}])["image_conversion"]["output_format"] == "raw"


def test_inject_image_metadata_renders_its_properties_and_roles() -> None:
    plugin = {"name": "inject_image_metadata", "properties": {"hw_rng_model": "virtio", "owner_specified.a": "b:c"}}
    section = rendered(importPlugins=[plugin])["inject_metadata_properties"]
    assert section["inject"] == "hw_rng_model:virtio,owner_specified.a:b:c"
    assert section["ignore_user_roles"] == "admin"
    custom = rendered(importPlugins=[{**plugin, "ignoreUserRoles": ["admin", "service"]}])
    assert custom["inject_metadata_properties"]["ignore_user_roles"] == "admin,service"


def test_plugins_run_in_the_order_given() -> None:
    plugins = [
        {"name": "inject_image_metadata", "properties": {"a": "b"}},
        {"name": "image_conversion"},
        {"name": "no_op"},
    ]
    parsed = rendered(importPlugins=plugins)
    assert parsed["image_import_opts"]["image_import_plugins"] == "[inject_image_metadata,image_conversion,no_op]"


def test_web_download_filter_defaults_deny_the_stacks_own_hosts_and_metadata() -> None:
    parsed = rendered(stores=[SWIFT, RBD], defaultStore="objects", memcachedServers=["cache1:11211"])
    section = parsed["import_filtering_opts"]
    assert section["allowed_schemes"] == "[http,https]"
    assert section["allowed_ports"] == "[80,443]"
    assert "allowed_hosts" not in section
    denied = section["disallowed_hosts"].strip("[]").split(",")
    assert {"localhost", "169.254.169.254", "fd00:ec2::254", "controller", "cache1", "mon1", "fd00::5"} <= set(denied)


def test_web_download_disallowed_hosts_come_first() -> None:
    section = rendered(webDownloadDisallowedHosts=["mirror.internal", "10.1.2.3"])["import_filtering_opts"]
    assert section["disallowed_hosts"].strip("[]").split(",")[:3] == ["mirror.internal", "10.1.2.3", "localhost"]


def test_web_download_allowed_hosts_schemes_and_ports() -> None:
    section = rendered(
        webDownloadAllowedHosts=["images.example", "10.9.0.1"],
        webDownloadAllowPrivate=True,
        webDownloadAllowedSchemes=["https"],
        webDownloadAllowedPorts=[443, 8443],
    )["import_filtering_opts"]
    assert section["allowed_hosts"] == "[images.example,10.9.0.1]"
    assert section["allowed_schemes"] == "[https]"
    assert section["allowed_ports"] == "[443,8443]"
    # Glance ignores disallowed hosts beside allowed ones: none are rendered.
    assert "disallowed_hosts" not in section


def test_each_api_host_gets_its_own_worker_url() -> None:
    deployment = two_hosts()
    urls = [host_conf(deployment, node)["DEFAULT"]["worker_self_reference_url"] for node in ("glance", "glance-2")]
    assert urls == [f"http://{host}:9292" for host in HOSTS]


def test_worker_urls_given_by_the_operator() -> None:
    given = ["https://g1.internal:9292", "https://g2.internal:9292"]
    deployment = two_hosts(workerUrls=given)
    urls = [host_conf(deployment, node)["DEFAULT"]["worker_self_reference_url"] for node in ("glance", "glance-2")]
    assert urls == given


def test_liberty_hosts_get_no_worker_url() -> None:
    config = {**stack_config("clearlinux"), **TEST_SECRETS, **pinned(*HOSTS), "apiHosts": HOSTS, "publicUrl": LB}
    config |= {
        "stores": [SWIFT],
        "defaultStore": "",
        "internalUrl": "",
        "adminUrl": "",
        "tlsTermination": "loadBalancer",
    }
    deployment = run_program(config)
    for node in ("glance", "glance-2"):
        text = plain(deployment.named(f"{node}-config-glance-api").inputs["stdin"])
        assert "worker_self_reference_url" not in text, node


def test_one_host_sets_no_worker_url() -> None:
    assert "worker_self_reference_url" not in rendered()["DEFAULT"]


def test_show_image_direct_url_exactly_where_the_default_store_is_rbd() -> None:
    assert rendered(stores=[RBD])["DEFAULT"]["show_image_direct_url"] == "True"
    assert "show_image_direct_url" not in rendered(stores=[SWIFT, RBD], defaultStore="objects")["DEFAULT"]
    assert rendered("clearlinux", stores=[RBD])["DEFAULT"]["show_image_direct_url"] == "True"


# ---- validation -------------------------------------------------------------------------------

CONVERSION = {"name": "image_conversion"}
INVALID: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "unknown method",
        "debian",
        {"importMethods": ["glance-direct", "web_download"]},
        "glance:importMethods[1] 'web_download' is not an import method the program configures; one of: "
        "glance-direct, web-download, copy-image",
    ),
    (
        "federated method",
        "debian",
        {"importMethods": ["glance-download"]},
        "(glance-download needs a federated deployment)",
    ),
    (
        "method twice",
        "debian",
        {"importMethods": ["copy-image", "copy-image"]},
        "glance:importMethods a method is listed twice",
    ),
    (
        "unknown plugin",
        "debian",
        {"importPlugins": [{"name": "image_resize"}]},
        "glance:importPlugins[0].name must be one of: image_conversion, inject_image_metadata, image_decompression, "
        "no_op",
    ),
    (
        "plugin without name",
        "debian",
        {"importPlugins": [{"outputFormat": "raw"}]},
        "glance:importPlugins[0].name must be one of",
    ),
    (
        "plugin twice",
        "debian",
        {"importPlugins": [CONVERSION, CONVERSION]},
        "glance:importPlugins a plugin is listed twice",
    ),
    (
        "conversion format the release does not know",
        "debian",
        {"importPlugins": [{**CONVERSION, "outputFormat": "vhdx"}]},
        "glance:importPlugins[0].outputFormat Glance zed converts to raw, qcow2, vmdk, not 'vhdx'",
    ),
    (
        "unknown plugin option",
        "debian",
        {"importPlugins": [{**CONVERSION, "format": "raw"}]},
        "glance:importPlugins[0].format is not a known key",
    ),
    (
        "nothing to inject",
        "debian",
        {"importPlugins": [{"name": "inject_image_metadata", "properties": {}}]},
        "glance:importPlugins[0].properties give at least one property to inject",
    ),
    (
        "a property key with a colon",
        "debian",
        {"importPlugins": [{"name": "inject_image_metadata", "properties": {"a:b": "c"}}]},
        "glance:importPlugins[0].properties key 'a:b' must be 1-255 characters without ',', ':'",
    ),
    (
        "a property value with a comma",
        "debian",
        {"importPlugins": [{"name": "inject_image_metadata", "properties": {"a": "b,c"}}]},
        "glance:importPlugins[0].properties the value of 'a' may not contain ','",
    ),
    (
        "a role with a space",
        "debian",
        {"importPlugins": [{"name": "inject_image_metadata", "properties": {"a": "b"}, "ignoreUserRoles": ["x y"]}]},
        "glance:importPlugins[0].ignoreUserRoles[0] a role name is letters, digits",
    ),
    (
        "methods on Liberty",
        "clearlinux",
        {"importMethods": ["glance-direct"]},
        "glance:importMethods Glance liberty (profile clearlinux) has no interoperable image import",
    ),
    (
        "a plugin on Liberty",
        "clearlinux",
        {"importPlugins": [CONVERSION]},
        "glance:importPlugins Glance liberty (profile clearlinux) has no interoperable image import",
    ),
    (
        "a web-download filter on Liberty",
        "clearlinux",
        {"webDownloadAllowedPorts": [8080]},
        "glance:webDownloadAllowedPorts Glance liberty (profile clearlinux) has no interoperable image import",
    ),
    (
        "a filter without web-download",
        "debian",
        {"importMethods": ["glance-direct"], "webDownloadAllowedHosts": ["images.example"]},
        "glance:webDownloadAllowedHosts only used with web-download in importMethods",
    ),
    (
        "allowed and disallowed hosts",
        "debian",
        {"webDownloadAllowedHosts": ["images.example"], "webDownloadDisallowedHosts": ["evil.example"]},
        "glance:webDownloadDisallowedHosts Glance ignores disallowed hosts beside webDownloadAllowedHosts",
    ),
    (
        "a private address not opened",
        "debian",
        {"webDownloadAllowedHosts": ["images.example", "10.0.0.5"]},
        "glance:webDownloadAllowedHosts[1] 10.0.0.5 is a private, loopback or link-local address, which web-download "
        "may fetch from only if you open it: set webDownloadAllowPrivate: true",
    ),
    ("loopback not opened", "debian", {"webDownloadAllowedHosts": ["127.0.0.1"]}, "127.0.0.1 is a private, loopback"),
    (
        "link-local not opened",
        "debian",
        {"webDownloadAllowedHosts": ["169.254.169.254"]},
        "169.254.169.254 is a private",
    ),
    ("IPv6 link-local not opened", "debian", {"webDownloadAllowedHosts": ["fe80::1"]}, "fe80::1 is a private"),
    ("IPv4-mapped private", "debian", {"webDownloadAllowedHosts": ["::ffff:10.0.0.1"]}, "::ffff:10.0.0.1 is a private"),
    (
        "allowPrivate without hosts",
        "debian",
        {"webDownloadAllowPrivate": True},
        "glance:webDownloadAllowPrivate opens the addresses listed in webDownloadAllowedHosts",
    ),
    (
        "ftp",
        "debian",
        {"webDownloadAllowedSchemes": ["ftp"]},
        "glance:webDownloadAllowedSchemes[0] Input should be 'http' or 'https'",
    ),
    (
        "no scheme",
        "debian",
        {"webDownloadAllowedSchemes": []},
        "glance:webDownloadAllowedSchemes List should have at least 1 item",
    ),
    (
        "port 0",
        "debian",
        {"webDownloadAllowedPorts": [0]},
        "glance:webDownloadAllowedPorts[0] Input should be greater than or equal to 1",
    ),
    ("a host with a space", "debian", {"webDownloadDisallowedHosts": ["a b"]}, "glance:webDownloadDisallowedHosts[0]"),
    (
        "worker URLs on Liberty",
        "clearlinux",
        {"apiHosts": HOSTS, "workerUrls": ["http://g1:9292", "http://g2:9292"]},
        "glance:workerUrls Glance liberty (profile clearlinux) has no interoperable image import",
    ),
    (
        "worker URLs on one host",
        "debian",
        {"workerUrls": ["http://g1:9292"]},
        "glance:workerUrls only used with several apiHosts",
    ),
]


@pytest.mark.parametrize(
    ("profile", "change", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_import_config_is_refused_naming_the_key(profile: str, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load(profile, **change)
    assert message in str(refused.value)


WORKER_URLS_INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("one URL for two hosts", {"workerUrls": ["http://10.0.0.11:9292"]}, "glance:workerUrls give one URL per API host"),
    (
        "the same URL twice",
        {"workerUrls": ["http://10.0.0.11:9292", "http://10.0.0.11:9292"]},
        "glance:workerUrls a URL is listed twice; each API host needs its own",
    ),
    (
        "the load balancer",
        {"workerUrls": [LB, "http://10.0.0.12:9292"]},
        f"glance:workerUrls {LB} is the load balancer's (an image endpoint)",
    ),
    ("not a URL", {"workerUrls": ["10.0.0.11:9292", "http://10.0.0.12:9292"]}, "glance:workerUrls[0]"),
]


@pytest.mark.parametrize(
    ("change", "message"), [case[1:] for case in WORKER_URLS_INVALID], ids=[case[0] for case in WORKER_URLS_INVALID]
)
def test_invalid_worker_urls_are_refused_before_any_resource(change: dict[str, Any], message: str) -> None:
    deployment = Deployment()
    with pytest.raises(ConfigError) as refused:
        two_hosts(deployment, **change)
    assert message in str(refused.value)
    assert deployment.registrations == []
