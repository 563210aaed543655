"""A corpus of stack configs an operator could plausibly write: typos, copy-paste accidents,
hostile values, and the unusual values that must keep working.

Each case runs the real program under mocks and asserts one of two things:
- refused before any resource is registered, with a message line naming the key (a list item
  with its index and field) and what is allowed, and without showing a secret value; or
- accepted and rendered right (the rendered config parsed back where it matters).
"""

from __future__ import annotations

import base64
import configparser
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from components.stack_input import GUIDE_CIRROS_MD5, SECRET_KEYS, ConfigError
from tests.unit.harness import (
    TEST_CEPH_KEY,
    TEST_HOST_KEY,
    TEST_SECRETS,
    Deployment,
    openssh_private_key,
    pinned,
    plain,
    run_program,
    stack_config,
)

API_CONF = "glance-config-glance-api"
CREDENTIALS = "glance-config-credentials"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # of b"test"
NON_ASCII_PASSWORD = "pässwörd-密码-🔑-ß"
LONG_PASSWORD = "".join(chr(0x21 + i % 94) for i in range(5000))
LABEL_70 = "a" * 70
HOST_300 = ".".join(["abcdefghij"] * 28)[:300]
RBD = {"id": "ceph", "type": "rbd", "monHosts": ["mon1"], "keyring": TEST_CEPH_KEY}
FILE = {"id": "local", "type": "file", "path": "/var/lib/glance/images"}
# The stack files set the endpoints to http://controller:9292: unset, they follow controllerHost.
DERIVED_URLS = {"publicUrl": "", "internalUrl": "", "adminUrl": ""}
SWIFT = {"id": "objects", "type": "swift"}


@dataclass(frozen=True)
class Refused:
    """Refused before any resource; the message line of `key` says `allowed`."""

    key: str
    allowed: str


@dataclass(frozen=True)
class Accepted:
    """Accepted; `check` looks at what was rendered."""

    check: Callable[[Deployment], None]


Change = dict[str, Any] | Callable[[Path], dict[str, Any]]


def base() -> dict[str, Any]:
    return {**stack_config("debian"), **TEST_SECRETS}


def controller(host: str, **more: Any) -> dict[str, Any]:
    """controllerHost `host`, its key pinned."""
    return {"controllerHost": host, **pinned(host), **more}


def postgres(**more: Any) -> dict[str, Any]:
    return {"dbEngine": "postgresql", **more}


def stores(*items: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"stores": list(items), "defaultStore": items[0]["id"], **more}


def limits(**more: Any) -> dict[str, Any]:
    return {"keystoneLimits": True, **more}


# ---- what was rendered ---------------------------------------------------------------------


def ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section="__unused__")
    parser.read_string(text)
    return parser


def oslo(value: str) -> str:
    """An oslo.config value as glance reads it back (quotes stripped, $$ -> $)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value.replace("$$", "$")


def main_conf(deployment: Deployment) -> configparser.ConfigParser:
    return ini(plain(deployment.named(API_CONF).inputs["stdin"]))


def credentials(deployment: Deployment) -> configparser.ConfigParser:
    return ini(plain(deployment.named(CREDENTIALS).inputs["stdin"]))


def database_url(deployment: Deployment) -> Any:
    return urlsplit(oslo(credentials(deployment)["database"]["connection"]))


def readiness(deployment: Deployment, name: str = "glance-ready") -> dict[str, Any]:
    return dict(json.loads(plain(deployment.named(name).inputs["stdin"])))


def provider(deployment: Deployment, name: str) -> dict[str, Any]:
    return dict(plain(deployment.named(name).inputs))


def generated(deployment: Deployment) -> set[str]:
    return {r.name for r in deployment.of_type("random:index/randomPassword:RandomPassword")}


def mentions(deployment: Deployment, name: str, text: str) -> bool:
    return text in json.dumps(plain(deployment.named(name).inputs), default=str)


# ---- checks of accepted configs ------------------------------------------------------------


def assert_port(d: Deployment, port: int) -> None:
    assert database_url(d).port == port


def ipv6_controller(d: Deployment) -> None:
    endpoints = {r.inputs["interface"]: r.inputs["url"] for r in d.of_type("openstack:identity/endpointV3:EndpointV3")}
    assert set(endpoints.values()) == {"http://[fd00::11]:9292"}
    authtoken = main_conf(d)["keystone_authtoken"]
    assert authtoken["www_authenticate_uri"] == "http://[fd00::11]:5000"
    assert authtoken["auth_url"] == "http://[fd00::11]:5000"
    url = database_url(d)
    assert (url.hostname, url.port, url.path) == ("fd00::11", 3306, "/glance")
    assert provider(d, "glance-mysql")["endpoint"] == "[fd00::11]:3306"
    assert provider(d, "glance-keystone")["authUrl"] == "http://[fd00::11]:5000/v3"
    assert readiness(d)["glance_url"] == "http://[fd00::11]:9292"
    assert plain(d.named("glance-install").inputs["connection"])["host"] == "fd00::11"


def ipv6_postgres(d: Deployment) -> None:
    assert provider(d, "glance-postgresql")["host"] == "[fd00::11]"
    assert mentions(d, "glance-pg-hba", "fd00::11/128")
    assert database_url(d).hostname == "fd00::11"


def keystone_without_double_v3(d: Deployment) -> None:
    assert provider(d, "glance-keystone")["authUrl"] == "http://controller:5000/v3"
    assert provider(d, "glance-image-provider")["authUrl"] == "http://controller:5000/v3"
    assert main_conf(d)["keystone_authtoken"]["auth_url"] == "http://controller:5000"
    assert readiness(d)["auth_url"] == "http://controller:5000"
    assert "/v3/v3" not in json.dumps([plain(r.inputs) for r in d.registrations], default=str)


def keystone_api_gets_v3(d: Deployment) -> None:
    assert provider(d, "glance-keystone")["authUrl"] == "https://keystone.example/identity/v3"
    assert main_conf(d)["keystone_authtoken"]["auth_url"] == "http://controller:5000"


def swift_auth_url_gets_v3(d: Deployment) -> None:
    references = ini(plain(d.named("glance-config-glance-pulumi-swift").inputs["stdin"]))
    assert references["objects"]["auth_address"] == "https://keystone.example:5000/v3"


def db_password_round_trips(password: str) -> Callable[[Deployment], None]:
    def check(d: Deployment) -> None:
        assert unquote(database_url(d).password or "") == password
        assert "glance-db-password" not in generated(d)

    return check


def glance_password_round_trips(password: str) -> Callable[[Deployment], None]:
    def check(d: Deployment) -> None:
        assert oslo(credentials(d)["keystone_authtoken"]["password"]) == password
        assert plain(d.named("glance-user").inputs["password"]) == password
        assert "glance-keystone-password" not in generated(d)

    return check


def admin_password_zero(d: Deployment) -> None:
    assert plain(d.named("glance-account").inputs["stdin"]).split("\n", 1)[0] == "0"
    assert plain(d.named("glance-keystone").inputs["password"]) == "0"


def store_dir(path: str, section: str = "glance_store", step: str = "glance-image-store-file") -> Any:
    def check(d: Deployment) -> None:
        assert main_conf(d)[section]["filesystem_store_datadir"] == path + "/"
        assert mentions(d, step, f"'{path}'") or mentions(d, step, f" {path}")

    return check


def memcached_inet6(d: Deployment) -> None:
    servers = main_conf(d)["keystone_authtoken"]["memcached_servers"]
    assert servers == "inet6:[fd00::11]:11211,cache1:11211"


def image_from(path_of: Callable[[Deployment], str], source_step: bool, visibility: str = "public") -> Any:
    def check(d: Deployment) -> None:
        image = d.named("glance-image").inputs
        assert image["localFilePath"] == path_of(d) and "imageSourceUrl" not in image
        assert image["visibility"] == visibility
        steps = [r.name for r in d.of_type("command:local:Command") if r.name == "glance-image-source"]
        assert bool(steps) == source_step
        if source_step:
            assert d.depends_on("glance-image", "glance-image-source")

    return check


def source_params(d: Deployment) -> dict[str, Any]:
    return dict(json.loads(d.named("glance-image-source").inputs["stdin"]))


def image_downloaded_sha256(d: Deployment) -> None:
    params = source_params(d)
    assert params["url"] == "https://mirror.example/images/cirros.img"
    assert (params["algorithm"], params["checksum"]) == ("sha256", SHA256)
    assert params["path"].endswith(f"/images/sha256-{SHA256}.img")
    image_from(lambda _: params["path"], source_step=True)(d)


def image_md5_normalised(d: Deployment) -> None:
    params = source_params(d)
    assert (params["algorithm"], params["checksum"]) == ("md5", GUIDE_CIRROS_MD5)


def limit_at_int32_max(d: Deployment) -> None:
    limits = {
        r.inputs["resourceName"]: r.inputs["defaultLimit"]
        for r in d.of_type("openstack:identity/registeredLimitV3:RegisteredLimitV3")
    }
    assert limits["image_size_total"] == 2147483647


def two_ipv6_hosts(d: Deployment) -> None:
    assert readiness(d, "glance-ready")["glance_url"] == "http://[fd00::21]:9292"
    assert readiness(d, "glance-2-ready")["glance_url"] == "http://[fd00::22]:9292"


def ceph_confs(d: Deployment) -> dict[str, configparser.ConfigParser]:
    """The rbd stores' ceph.conf steps: name -> parsed file."""
    steps = d.of_type("command:remote:Command")
    return {r.name: ini(plain(r.inputs["stdin"])) for r in steps if "[global]" in str(plain(r.inputs.get("stdin")))}


def ceph_monitors(d: Deployment) -> None:
    (ceph,) = ceph_confs(d).values()
    assert ceph["global"]["mon_host"] == "[fd00::31],10.0.0.31:6789,mon3"


def two_ceph_confs(d: Deployment) -> None:
    confs = ceph_confs(d)
    assert len(confs) == 2
    assert {conf["client.glance"]["keyring"] for conf in confs.values() if conf.has_section("client.glance")}
    assert len({r.inputs["create"] for r in d.registrations if r.name in confs}) == 2


def rendered_at_all(d: Deployment) -> None:
    assert d.named("glance-image").inputs["name"] == "cirros"


def pg_hba_name(d: Deployment) -> None:
    assert mentions(d, "glance-pg-hba", "glance_db")
    assert database_url(d).path == "/glance_db"


def ipv6_host_key_port(d: Deployment) -> None:
    connection = plain(d.named("glance-install").inputs["connection"])
    assert (connection["host"], connection["port"], connection["hostKey"]) == ("fd00::11", 2222, TEST_HOST_KEY)


# ---- inputs that need a file ---------------------------------------------------------------


def image_file(name: str = "cirros image.qcow2", content: bytes = b"test") -> Callable[[Path], dict[str, Any]]:
    def make(tmp_path: Path) -> dict[str, Any]:
        path = tmp_path / name
        path.write_bytes(content)
        return {"cirrosSource": str(path)}

    return make


def with_checksum(checksum: str) -> Callable[[Path], dict[str, Any]]:
    def make(tmp_path: Path) -> dict[str, Any]:
        return {**image_file()(tmp_path), "cirrosChecksum": checksum}

    return make


def link_to(target: str) -> Callable[[Path], dict[str, Any]]:
    def make(tmp_path: Path) -> dict[str, Any]:
        link = tmp_path / "cirros.img"
        os.symlink(target, link)
        return {"cirrosSource": str(link)}

    return make


def local_image_path(d: Deployment) -> str:
    return str(d.named("glance-image").inputs["localFilePath"])


PEM_RSA = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + base64.b64encode(b"\x30\x82" + bytes(60)).decode()
    + ("\n-----END RSA PRIVATE KEY-----")
)
MISMATCHED_ARMOUR = openssh_private_key().replace("END OPENSSH", "END RSA")

# ---- the corpus ----------------------------------------------------------------------------

CASES: list[tuple[str, Change, Refused | Accepted]] = [
    # Host names and addresses.
    ("host with #", controller("controller#1"), Refused("controllerHost", "RFC 1123")),
    ("300-character host", controller(HOST_300), Refused("controllerHost", "at most 253")),
    ("70-character label", controller(f"{LABEL_70}.example"), Refused("controllerHost", "a label has 70 characters")),
    ("host with a space", controller("ctl host"), Refused("controllerHost", "RFC 1123")),
    ("host with underscore", controller("ctl_1"), Refused("controllerHost", "letters, digits and '-'")),
    ("empty host", {"controllerHost": ""}, Refused("controllerHost", "RFC 1123")),
    ("IPv4 out of range", controller("10.0.0.256"), Refused("controllerHost", "not a valid IPv4 address")),
    ("bad IPv6", controller("fd00::zz"), Refused("controllerHost", "not a valid IPv6 address")),
    ("IPv6 with zone", controller("fe80::1%eth0"), Refused("controllerHost", "without a zone id")),
    ("API host with #", {"apiHosts": ["api1", "api#2"]}, Refused("apiHosts[1]", "RFC 1123")),
    ("database host with a leading -", {"dbHost": "-db"}, Refused("dbHost", "RFC 1123")),
    ("database SSH host with a path", {"dbSshHost": "db/1"}, Refused("dbSshHost", "without scheme, port or path")),
    ("admin host URL", {"dbAdminHost": "mysql://db"}, Refused("dbAdminHost", "RFC 1123")),
    ("pg_hba host with #", postgres(pgHbaAddress="controller#1"), Refused("pgHbaAddress", "RFC 1123")),
    ("pg_hba IP without prefix", postgres(pgHbaAddress="10.0.0.11"), Refused("pgHbaAddress", "prefix length")),
    ("pg_hba prefix too long", postgres(pgHbaAddress="10.0.0.0/33"), Refused("pgHbaAddress", "CIDR")),
    ("IPv6 controller", controller("fd00::11", **DERIVED_URLS), Accepted(ipv6_controller)),
    (
        "IPv6 controller in brackets",
        {"controllerHost": "[fd00::11]", **pinned("fd00::11"), **DERIVED_URLS},
        Accepted(ipv6_controller),
    ),
    ("IPv6 on PostgreSQL", controller("fd00::11", dbEngine="postgresql"), Accepted(ipv6_postgres)),
    (
        "IPv6 API hosts",
        {
            "apiHosts": ["fd00::21", "fd00::22"],
            **pinned("fd00::21", "fd00::22"),
            **stores(SWIFT),
            "publicUrl": "https://[fd00::20]:9292",
            "tlsTermination": "loadBalancer",
        },
        Accepted(two_ipv6_hosts),
    ),
    (
        "IPv6 host key with a port",
        {"controllerHost": "fd00::11", "sshPort": 2222, "sshHostKeys": [f"[fd00::11]:2222 {TEST_HOST_KEY}"]},
        Accepted(ipv6_host_key_port),
    ),
    # URLs.
    ("URL with user info", {"publicUrl": "http://glance:s3cret@controller:9292"}, Refused("publicUrl", "user info")),
    ("URL with a query", {"publicUrl": "http://controller:9292/?debug=1"}, Refused("publicUrl", "no query")),
    ("URL with a fragment", {"keystoneUrl": "http://controller:5000#top"}, Refused("keystoneUrl", "fragment")),
    ("URL port 99999", {"internalUrl": "http://controller:99999"}, Refused("internalUrl", "port 1-65535")),
    ("URL port 0", {"internalUrl": "http://controller:0"}, Refused("internalUrl", "1-65535")),
    ("URL with a space", {"adminUrl": "http://contr oller:9292"}, Refused("adminUrl", "white space")),
    ("URL with a # host", {"adminUrl": "http://controller#1:9292"}, Refused("adminUrl", "fragment")),
    ("URL without scheme", {"publicUrl": "controller:9292"}, Refused("publicUrl", "http:// or https://")),
    ("URL of another scheme", {"keystoneApiUrl": "ftp://controller/v3"}, Refused("keystoneApiUrl", "http://")),
    ("bare IPv6 in a URL", {"publicUrl": "http://fd00::11:9292"}, Refused("publicUrl", "in brackets")),
    ("Keystone v2.0", {"keystoneAuthUrl": "http://controller:5000/v2.0"}, Refused("keystoneAuthUrl", "v3 URL")),
    ("auth URL with /v3", {"keystoneAuthUrl": "http://controller:5000/v3"}, Accepted(keystone_without_double_v3)),
    ("auth URL with /v3/", {"keystoneAuthUrl": "http://controller:5000/v3/"}, Accepted(keystone_without_double_v3)),
    ("auth URL without /v3", {"keystoneAuthUrl": "http://controller:5000"}, Accepted(keystone_without_double_v3)),
    (
        "API URL without /v3",
        {"keystoneApiUrl": "https://keystone.example/identity"},
        Accepted(keystone_api_gets_v3),
    ),
    (
        "swift auth URL without /v3",
        stores({**SWIFT, "authUrl": "https://keystone.example:5000"}),
        Accepted(swift_auth_url_gets_v3),
    ),
    (
        "swift auth URL with user info",
        stores({**SWIFT, "authUrl": "https://u:p@keystone.example/v3"}),
        Refused("stores[0].authUrl", "user info"),
    ),
    (
        "s3 endpoint without scheme",
        stores(
            {"id": "s3", "type": "s3", "endpoint": "s3.example:8443", "bucket": "b", "accessKey": "a", "secretKey": "k"}
        ),
        Refused("stores[0].endpoint", "http:// or https://"),
    ),
    # Paths.
    ("store path with ..", {"imageStorePath": "/var/lib/glance/images/../.."}, Refused("imageStorePath", "'..'")),
    ("store at /var/lib/glance", {"imageStorePath": "/var/lib/glance"}, Refused("imageStorePath", "glance's home")),
    ("store at /var/lib", {"imageStorePath": "/var/lib"}, Refused("imageStorePath", "system directory")),
    ("store at /", {"imageStorePath": "/"}, Refused("imageStorePath", "system directory")),
    ("store in /etc", {"imageStorePath": "/etc/glance/images"}, Refused("imageStorePath", "system directory")),
    ("store in /home", {"imageStorePath": "/home/alice/images"}, Refused("imageStorePath", "system directory")),
    ("store in /tmp", {"imageStorePath": "/tmp/images"}, Refused("imageStorePath", "system directory")),
    (
        "store in staging",
        {"imageStorePath": "/var/lib/glance/staging"},
        Refused("imageStorePath", "a directory Glance uses itself"),
    ),
    ("relative store path", {"imageStorePath": "images"}, Refused("imageStorePath", "absolute path")),
    (
        "file store at /var/lib/glance",
        stores({**FILE, "path": "/var/lib/glance"}),
        Refused("stores[0].path", "glance's home"),
    ),
    (
        "nested file stores",
        stores({**FILE, "path": "/srv/glance"}, {"id": "more", "type": "file", "path": "/srv/glance/more"}),
        Refused("stores[1].path", "inside stores[0].path"),
    ),
    (
        "rbd user traversal",
        stores({**RBD, "user": "x/../../../../root/.ssh/authorized_keys"}),
        Refused("stores[0].user", "no '/' or '..'"),
    ),
    ("rbd user with client.", stores({**RBD, "user": "client.glance"}), Refused("stores[0].user", "without `client.`")),
    (
        "cephConf over glance-api.conf",
        stores({**RBD, "cephConf": "/etc/glance/glance-api.conf"}),
        Refused("stores[0].cephConf", "outside /etc/glance"),
    ),
    (
        "cephConf with ..",
        stores({**RBD, "cephConf": "/etc/ceph/../glance/x.conf"}),
        Refused("stores[0].cephConf", "'..'"),
    ),
    ("cephConf /etc/passwd", stores({**RBD, "cephConf": "/etc/passwd"}), Refused("stores[0].cephConf", ".conf file")),
    (
        "two rbd stores, one cephConf",
        stores(RBD, {**RBD, "id": "ceph2", "user": "other"}),
        Accepted(two_ceph_confs),
    ),
    (
        "monitor with a newline",
        stores({**RBD, "monHosts": ["mon1\nmon_host = evil"]}),
        Refused("stores[0].monHosts[0]", "line feed"),
    ),
    ("monitor URL", stores({**RBD, "monHosts": ["http://mon1:6789"]}), Refused("stores[0].monHosts[0]", "not a URL")),
    ("pg_hba path elsewhere", postgres(pgHbaPath="/etc/passwd"), Refused("pgHbaPath", "named pg_hba.conf")),
    ("pg_hba path with ..", postgres(pgHbaPath="/etc/x/../pg_hba.conf"), Refused("pgHbaPath", "'..'")),
    ("store path with spaces", {"imageStorePath": "/srv/glance images"}, Accepted(store_dir("/srv/glance images"))),
    (
        "store path with a trailing /",
        {"imageStorePath": "/var/lib/glance/images/"},
        Accepted(store_dir("/var/lib/glance/images")),
    ),
    (
        "file store with spaces",
        stores({**FILE, "path": "/data/glance images/"}),
        Accepted(store_dir("/data/glance images", "local", "glance-image-store-local")),
    ),
    # Identifiers.
    ("dbUser root", {"dbUser": "root"}, Refused("dbUser", "administrator or reserved account")),
    ("dbUser postgres", postgres(dbUser="postgres"), Refused("dbUser", "administrator or reserved account")),
    ("dbUser mysql", {"dbUser": "mysql"}, Refused("dbUser", "administrator")),
    ("dbUser pg_monitor", postgres(dbUser="pg_monitor"), Refused("dbUser", "reserved")),
    ("dbUser is dbAdminUser", {"dbUser": "dbadmin", "dbAdminUser": "dbadmin"}, Refused("dbUser", "dbAdminUser")),
    (
        "dbName injecting pg_hba",
        postgres(dbName="all all 0.0.0.0/0 trust #"),
        Refused("dbName", "letters, digits or '_'"),
    ),
    ("dbName all", postgres(dbName="all"), Refused("dbName", "pg_hba.conf keyword")),
    ("dbName mysql", {"dbName": "mysql"}, Refused("dbName", "database of the server itself")),
    (
        "dbUser with a literal \\n",
        postgres(dbUser="glance\\nhost all all 0.0.0.0/0 trust"),
        Refused("dbUser", "letters, digits or '_'"),
    ),
    ("dbUser with a newline", postgres(dbUser="glance\nhost"), Refused("dbUser", "line feed")),
    ("MySQL dbName with _", {"dbName": "glance_db"}, Refused("dbName", "may not contain '_'")),
    ("MySQL dbName with %", {"dbName": "glance%"}, Refused("dbName", "letters, digits or '_'")),
    ("PostgreSQL dbName with _", postgres(dbName="glance_db"), Accepted(pg_hba_name)),
    ("empty dbUser", {"dbUser": ""}, Refused("dbUser", "at most 63")),
    ("64-character dbUser", {"dbUser": "g" * 64}, Refused("dbUser", "at most 63")),
    ("long MySQL dbUser", {"dbUser": "g" * 40}, Refused("dbUser", "at most 32")),
    ("empty sshUser", {"sshUser": ""}, Refused("sshUser", "user name")),
    ("sshUser with a space", {"sshUser": "root -oProxyCommand=x"}, Refused("sshUser", "user name")),
    ("empty region", {"region": ""}, Refused("region", "must not be empty")),
    ("empty domainName", {"domainName": ""}, Refused("domainName", "must not be empty")),
    ("empty domainId", {"domainId": ""}, Refused("domainId", "must not be empty")),
    ("serviceProject with a space", {"serviceProject": " service"}, Refused("serviceProject", "white space")),
    ("empty keystoneAdminUser", {"keystoneAdminUser": ""}, Refused("keystoneAdminUser", "must not be empty")),
    ("empty glanceUser", {"glanceUser": ""}, Refused("glanceUser", "must not be empty")),
    ("glanceUser is the admin", {"glanceUser": "admin"}, Refused("glanceUser", "keystoneAdminUser")),
    (
        "limitsUser is glanceUser",
        limits(limitsUser="glance"),
        Refused("limitsUser", "two Keystone users with one name"),
    ),
    # Control characters, secrets included (never shown).
    (
        "newline in the admin password",
        {"dbAdminPassword": "pw\nDROP DATABASE mysql;"},
        Refused("dbAdminPassword", "line feed"),
    ),
    ("CR in the glance password", {"glancePassword": "pw-from-windows\r"}, Refused("glancePassword", "dos2unix")),
    ("NUL in a password", {"keystoneAdminPassword": "pw\x00rest"}, Refused("keystoneAdminPassword", "U+0000")),
    ("tab in a password", {"dbPassword": "pw\there"}, Refused("dbPassword", "tab")),
    (
        "section injected through CR",
        {"apiOptions": ["DEFAULT.debug=True\r[paste_deploy]\rflavor="]},
        Refused("apiOptions[0]", "carriage return"),
    ),
    (
        "escape in a store description",
        stores({**FILE, "description": "disk\x1b[2J"}),
        Refused("stores[0].description", "U+001B"),
    ),
    ("DEL in the image name", {"imageName": "cirros\x7f"}, Refused("imageName", "U+007F")),
    (
        "newline in a secret option",
        {"apiSecretOptions": ["oslo_messaging_notifications.transport_url=rabbit://u:p@mq/\nx"]},
        Refused("apiSecretOptions[0]", "line feed"),
    ),
    ("CR in the rbd keyring", stores({**RBD, "keyring": TEST_CEPH_KEY + "\r"}), Refused("stores[0].keyring", "U+000D")),
    # apiOptions.
    (
        "authentication removed",
        {"apiOptions": ["paste_deploy.flavor="]},
        Refused("apiOptions[0]", "set by the program"),
    ),
    (
        "database overridden, upper case",
        {"apiOptions": ["DATABASE.connection=sqlite://"]},
        Refused("apiOptions[0]", "set by the program"),
    ),
    (
        "auth URL with a dash",
        {"apiOptions": ["keystone_authtoken.auth-url=http://evil"]},
        Refused("apiOptions[0]", "set by the program"),
    ),
    ("section with a bracket", {"apiOptions": ["DEFAULT]x.debug=1"]}, Refused("apiOptions[0]", "section.option")),
    # Limits.
    ("limit above int32", limits(imageSizeTotal=2147483648), Refused("imageSizeTotal", "2147483647")),
    ("negative limit", limits(imageCountTotal=-1), Refused("imageCountTotal", "greater than or equal to 0")),
    (
        "limit at int32",
        {**stack_config("rhel"), **TEST_SECRETS, "imageSizeTotal": 2147483647},
        Accepted(limit_at_int32_max),
    ),
    # memcached.
    ("memcached URL", {"memcachedServers": ["http://controller:11211"]}, Refused("memcachedServers[0]", "not a URL")),
    ("empty memcached item", {"memcachedServers": [""]}, Refused("memcachedServers[0]", "host:port")),
    ("memcached without port", {"memcachedServers": ["controller"]}, Refused("memcachedServers[0]", "host:port")),
    ("memcached port 99999", {"memcachedServers": ["controller:99999"]}, Refused("memcachedServers[0]", "1-65535")),
    (
        "memcached IPv6",
        {"memcachedServers": ["[fd00::11]:11211", "cache1:11211"]},
        Accepted(memcached_inet6),
    ),
    # The CirrOS source.
    (
        "cirros path traversal",
        {"cirrosSource": "/tmp/../root/.ssh/id_ed25519"},
        Refused("cirrosSource", "'..'"),
    ),
    ("cirros from /root", {"cirrosSource": "/root/.ssh/id_ed25519"}, Refused("cirrosSource", "home directory")),
    ("cirros from /etc", {"cirrosSource": "/etc/shadow"}, Refused("cirrosSource", "/etc")),
    ("cirros from /proc", {"cirrosSource": "/proc/self/environ"}, Refused("cirrosSource", "/proc")),
    ("cirros link into /etc", link_to("/etc/hostname"), Refused("cirrosSource", "/etc")),
    ("cirros file missing", {"cirrosSource": "/srv/no/such/image.img"}, Refused("cirrosSource", "no regular file")),
    ("cirros directory", {"cirrosSource": "/srv"}, Refused("cirrosSource", "no regular file")),
    (
        "link-local metadata URL",
        {"cirrosSource": "http://169.254.169.254/latest/meta-data/", "cirrosChecksum": SHA256},
        Refused("cirrosSource", "metadata"),
    ),
    (
        "IPv6 metadata URL",
        {"cirrosSource": "http://[fd00:ec2::254]/latest/", "cirrosChecksum": SHA256},
        Refused("cirrosSource", "link-local"),
    ),
    (
        "URL without checksum",
        {"cirrosSource": "https://mirror.example/images/cirros.img"},
        Refused("cirrosChecksum", "required with a cirrosSource URL"),
    ),
    ("malformed checksum", {"cirrosChecksum": "abc123"}, Refused("cirrosChecksum", "SHA-256 (64 hex digits")),
    ("unknown visibility", {"imageVisibility": "everyone"}, Refused("imageVisibility", "'public'")),
    (
        "community image on Liberty",
        {**stack_config("clearlinux"), **TEST_SECRETS, "imageVisibility": "community"},
        Refused("imageVisibility", "public and private"),
    ),
    (
        "URL with sha256",
        {"cirrosSource": "https://mirror.example/images/cirros.img", "cirrosChecksum": SHA256},
        Accepted(image_downloaded_sha256),
    ),
    ("guide URL, its MD5", {"cirrosChecksum": GUIDE_CIRROS_MD5.upper()}, Accepted(image_md5_normalised)),
    ("local file with spaces", image_file(), Accepted(image_from(local_image_path, source_step=False))),
    ("local file with checksum", with_checksum(f"sha256:{SHA256}"), Accepted(image_from(local_image_path, True))),
    (
        "private image",
        {"imageVisibility": "private"},
        Accepted(image_from(lambda d: source_params(d)["path"], True, "private")),
    ),
    # The SSH private key.
    ("key is a path", {"sshPrivateKey": "/root/.ssh/id_ed25519"}, Refused("sshPrivateKey", "file path")),
    ("key is public", {"sshPrivateKey": TEST_HOST_KEY}, Refused("sshPrivateKey", "public key")),
    (
        "key with a passphrase",
        {"sshPrivateKey": openssh_private_key(cipher=b"aes256-ctr")},
        Refused("sshPrivateKey", "passphrase"),
    ),
    (
        "key with Windows line endings",
        {"sshPrivateKey": openssh_private_key().replace("\n", "\r\n")},
        Refused("sshPrivateKey", "carriage return"),
    ),
    ("key with mismatched armour", {"sshPrivateKey": MISMATCHED_ARMOUR}, Refused("sshPrivateKey", "-----END")),
    ("PEM key", {"sshPrivateKey": PEM_RSA}, Accepted(rendered_at_all)),
    ("key without final newline", {"sshPrivateKey": openssh_private_key().strip()}, Accepted(rendered_at_all)),
    # Passwords that must keep working.
    ("database password 0", {"dbPassword": "0"}, Accepted(db_password_round_trips("0"))),
    ("glance password 0", {"glancePassword": "0"}, Accepted(glance_password_round_trips("0"))),
    ("admin passwords 0", {"dbAdminPassword": "0", "keystoneAdminPassword": "0"}, Accepted(admin_password_zero)),
    ("non-ASCII password", {"dbPassword": NON_ASCII_PASSWORD}, Accepted(db_password_round_trips(NON_ASCII_PASSWORD))),
    (
        "5000-character password",
        {"glancePassword": LONG_PASSWORD},
        Accepted(glance_password_round_trips(LONG_PASSWORD)),
    ),
    (
        "password of quotes, $ and spaces",
        {"glancePassword": " '$x' \"y\" % @:/ "},
        Accepted(glance_password_round_trips(" '$x' \"y\" % @:/ ")),
    ),
    ("password like JSON", {"glancePassword": "[1]"}, Accepted(glance_password_round_trips("[1]"))),
    ("password [] is set", {"dbPassword": "[]"}, Accepted(db_password_round_trips("[]"))),
    ("dbPort 0 is unset", {"dbPort": "0"}, Accepted(lambda d: assert_port(d, 3306))),
    (
        "IPv6 and named monitors",
        stores({**RBD, "monHosts": ["fd00::31", "10.0.0.31:6789", "mon3"]}),
        Accepted(ceph_monitors),
    ),
]


def test_the_corpus_is_large_enough() -> None:
    refused = [case for case in CASES if isinstance(case[2], Refused)]
    accepted = [case for case in CASES if isinstance(case[2], Accepted)]
    assert len(CASES) >= 80 and len(refused) >= 60 and len(accepted) >= 20
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("change", "expect"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_corpus(change: Change, expect: Refused | Accepted, tmp_path: Path) -> None:
    overrides = change(tmp_path) if callable(change) else change
    config = {**base(), **overrides}
    deployment = Deployment()
    if isinstance(expect, Accepted):
        run_program(config, deployment)
        expect.check(deployment)
        return
    with pytest.raises(ConfigError) as refused:
        run_program(config, deployment)
    message = str(refused.value)
    assert deployment.registrations == [], "registered resources before refusing"
    lines = [line.strip() for line in message.splitlines()[1:]]
    named = [line for line in lines if line.startswith(f"glance:{expect.key} ")]
    assert named, f"no line names glance:{expect.key}:\n{message}"
    assert any(expect.allowed in line for line in named), message
    for key in SECRET_KEYS & overrides.keys():
        value = overrides[key]
        if isinstance(value, str) and len(value) > 3:
            assert value not in message and value.strip() not in message, f"{key}'s value is shown"


def test_every_problem_is_reported_at_once() -> None:
    config = {
        **base(),
        **controller("controller#1"),
        "dbUser": "root",
        "publicUrl": "http://u:p@controller:9292",
        "imageSizeTotal": 2**31,
        "memcachedServers": ["", "x:1"],
        "stores": [{**FILE, "path": "/var/lib"}, {**RBD, "user": "a/b"}],
        "defaultStore": "local",
        "glancePassword": "pw\r",
    }
    deployment = Deployment()
    with pytest.raises(ConfigError) as refused:
        run_program(config, deployment)
    message = str(refused.value)
    for key in (
        "controllerHost",
        "dbUser",
        "publicUrl",
        "imageSizeTotal",
        "memcachedServers[0]",
        "stores[0].path",
        "stores[1].user",
        "glancePassword",
    ):
        assert f"glance:{key} " in message, key
    assert "memcachedServers[1]" not in message
    assert deployment.registrations == []


def test_cross_key_rules_are_reported_together() -> None:
    config = {**base(), "dbUser": "dbadmin", "dbAdminUser": "dbadmin", "glanceUser": "admin", "dbName": "glance_x"}
    with pytest.raises(ConfigError) as refused:
        run_program(config)
    message = str(refused.value)
    assert all(f"glance:{key} " in message for key in ("dbUser", "glanceUser", "dbName"))
