"""The stack config as input: every `glance:*` key, read, validated, and explained when wrong.

`StackConfig` declares each key once: its type, its default and its description. Pulumi.yaml's
`config:` block and the README's key table are generated from it (components/schema_docs.py).
`parse_config` takes the raw `glance:*` config values (strings, as Pulumi hands them over) and
either returns a valid `StackConfig` or raises `ConfigError` with one message naming every bad
key and what it allows. settings.py derives the frozen records the components use from it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pulumi import RunError
from pulumi.runtime import config as runtime_config
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from components import certificates, validators
from components.image_import import (
    IMPORT_METHODS,
    PLUGIN_NAMES,
    WEB_DOWNLOAD_SCHEMES,
    ImageConversion,
    Method,
    PluginConfig,
    WebDownloadScheme,
    closed_address,
)
from components.profiles import LIBERTY, PROFILES, ZED, DbEngine, Profile, ProfileName
from components.stores import SECRET_OPTIONS, STORE_TYPES, FileStore, StoreConfig

NAMESPACE = "glance"

# ---- defaults the descriptions state and settings.py applies -------------------------------

DEFAULT_STORE_PATH = "/var/lib/glance/images"
GLANCE_PORT = 9292
# Keystone's public API (authtoken's auth_uri / www_authenticate_uri); auth_url's port is the release's.
KEYSTONE_PORT = 5000
DB_PORTS: Mapping[DbEngine, int] = {"mysql": 3306, "postgresql": 5432}
# The administrator each engine is installed with.
DB_ADMINS: Mapping[DbEngine, str] = {"mysql": "root", "postgresql": "postgres"}
GUIDE_CIRROS_URL = "http://download.cirros-cloud.net/0.3.4/cirros-0.3.4-x86_64-disk.img"
# The guide's image as Glance's checksum shows it (MD5; the CirrOS site publishes MD5SUMS for 0.3.4).
GUIDE_CIRROS_MD5 = "ee1eca47dc88f4879d8a229cc70a07c6"

# ---- what the keys allow -----------------------------------------------------------------

# The host key types pulumi-command's client verifies (it asks the host for exactly the pinned type).
HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
# Options the program sets itself: an apiOptions item may not override them (section -> options;
# None: the whole section). The database URL and Keystone's credentials come from their own keys,
# and paste_deploy.flavor keystone is what turns authentication on.
OWNED_OPTIONS: Mapping[str, frozenset[str] | None] = {
    "database": None,
    "paste_deploy": None,
    "keystone_authtoken": frozenset(
        {
            "auth_uri",
            "www_authenticate_uri",
            "auth_url",
            "auth_type",
            "auth_plugin",
            "project_domain_id",
            "project_domain_name",
            "user_domain_id",
            "user_domain_name",
            "project_name",
            "username",
            "password",
        }
    ),
    "oslo_limit": frozenset(
        {
            "auth_url",
            "auth_type",
            "user_domain_id",
            "user_domain_name",
            "username",
            "password",
            "system_scope",
            "endpoint_id",
            "region_name",
        }
    ),
}
# Option names that hold a credential in oslo.config-based services (password, transport_url,
# connection strings, swift/s3 keys, profiler hmac_keys, ...).
CREDENTIAL_OPTION = re.compile(
    r"pass(word|wd)|secret|(^|_)token$|credential|private|transport_url|connection|(^|_)keys?$"
)
# A URL with a password in it: scheme://user:password@host.
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)
Environment = Literal["production", "staging", "development", "lab"]
Visibility = Literal["public", "private", "shared", "community"]
ENVIRONMENTS: tuple[str, ...] = get_args(Environment)


class ConfigError(RunError, ValueError):
    """The stack config is invalid; the message names each key and what it allows.

    A RunError, so the engine shows the message alone, without a Python traceback.
    """


def _by_value(mapping: Mapping[str, str]) -> dict[str, list[str]]:
    """value -> the keys that hold it, in order."""
    keys: dict[str, list[str]] = {}
    for key, value in mapping.items():
        keys.setdefault(value, []).append(key)
    return keys


def _cirros_source(value: str) -> str:
    """An http(s) URL the machine running Pulumi downloads, or a local image file."""
    if value.startswith("/"):
        return validators.image_file(value)
    try:
        url = validators.http_url(value)
    except ValueError as exc:
        if "://" in value:
            raise
        raise ValueError("must be an http(s) URL or an absolute path to a local image file") from exc
    hostname = urlsplit(url).hostname or ""
    if validators.is_metadata_host(hostname):
        raise ValueError(
            "points at a link-local or cloud metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254), "
            "which the machine running Pulumi must not fetch; give the image's real URL"
        )
    return url


def _checksum(value: str) -> str:
    parsed = validators.checksum(value)
    return f"{parsed.algorithm}:{parsed.hex}"


def _pg_hba_address(value: str) -> str:
    if "/" in value:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError("must be a CIDR (e.g. 10.0.0.0/24 or fd00::/64) or a host name") from None
        return value
    if validators.ip_address(value) is not None:
        raise ValueError("an IP address needs a prefix length here, e.g. 10.0.0.11/32")
    return validators.host(value)


_SECTION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_OPTION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _option_name(value: str) -> tuple[str, str]:
    """section.option of a section.option=value item, refusing the options the program owns."""
    section, dot, rest = value.partition(".")
    option, equals, _ = rest.partition("=")
    if not (dot and equals and _SECTION.fullmatch(section) and _OPTION.fullmatch(option)):
        raise ValueError(
            "items must look like section.option=value, section and option of letters, digits, '_' or '-', "
            "e.g. DEFAULT.workers=2"
        )
    # oslo.config reads group names in lower case (but DEFAULT) and '-' in option names as '_'.
    group = section if section == "DEFAULT" else section.lower()
    owned = OWNED_OPTIONS.get(group, frozenset())
    if owned is None or option.lower().replace("-", "_") in owned:
        raise ValueError(
            f"{section}.{option} is set by the program (database, Keystone credentials, paste_deploy and "
            "oslo_limit come from their own keys); remove the item"
        )
    return section, option


def _option_line(value: str) -> str:
    """An apiOptions item: rendered into the plain glance-api.conf, so it may hold no credential."""
    section, option = _option_name(value)
    if CREDENTIAL_OPTION.search(option.lower()) or URL_WITH_PASSWORD.search(value):
        raise ValueError(
            f"{section}.{option} holds a credential, which glance-api.conf and the preview would show: "
            "put the item into glance:apiSecretOptions instead (`pulumi config set --secret`)"
        )
    return value


def _secret_option_line(value: SecretStr) -> SecretStr:
    """An apiSecretOptions item; its value is never part of an error message."""
    _option_name(value.get_secret_value())
    return value


def known_host_address(field: str) -> tuple[str, int | None]:
    """The host field of a known_hosts line: (host, port), port None for `host` alone; ssh-keyscan
    writes `[host]:port` for a port other than 22."""
    bracketed = re.fullmatch(r"\[(.+)\]:(\d+)", field)
    return (bracketed.group(1), int(bracketed.group(2))) if bracketed else (field, None)


def _known_host(value: str) -> str:
    """`HOST TYPE BASE64`, a line as `ssh-keyscan -t ed25519 HOST` prints it (known_hosts form)."""
    how = "as `ssh-keyscan -t ed25519 HOST` prints it, its fingerprint checked out of band (`ssh-keygen -lf`)"
    fields = value.split()
    if len(fields) < 3 or fields[1] not in HOST_KEY_TYPES:
        raise ValueError(f"items must be `HOST TYPE BASE64` lines, TYPE one of {', '.join(HOST_KEY_TYPES)}, {how}")
    host, kind, key = fields[:3]
    validators.host(known_host_address(host)[0])
    try:
        blob = base64.b64decode(key, validate=True)
    except binascii.Error:
        raise ValueError(f"the key of {host} is not base64; copy the line {how}") from None
    # The key's own encoding starts with its type: a key pasted under the wrong type is caught here.
    length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + length] != kind.encode():
        raise ValueError(f"the key of {host} is not an {kind} key; copy the line {how}")
    return f"{host} {kind} {key}"


def _private_key(value: SecretStr) -> SecretStr:
    validators.ssh_private_key(value.get_secret_value())
    return value


def _password(value: SecretStr) -> SecretStr:
    """Any printable character works (control characters are refused for every key)."""
    if not value.get_secret_value():
        raise ValueError("must not be empty")
    return value


HostName = validators.Host
HttpUrl = validators.HttpUrl
Port = validators.Port
Limit = validators.Limit
Name = validators.Name
OptionLine = Annotated[str, AfterValidator(_option_line)]
SecretOptionLine = Annotated[SecretStr, AfterValidator(_secret_option_line)]
KnownHost = Annotated[str, AfterValidator(_known_host)]
Password = Annotated[SecretStr, AfterValidator(_password)]


def derived(description: str) -> Any:
    """A key whose default follows from other keys, as its description says: None here (settings.py
    derives the value), the empty value of its type in Pulumi.yaml, "derived" in the README."""
    return Field(None, description=description, json_schema_extra={"derived": True})


def _per_profile(value: Callable[[Profile], object]) -> str:
    """A default that depends on the profile, in words: `mysql for clearlinux/debian, postgresql for rhel`."""
    groups: dict[str, list[str]] = {}
    for profile in PROFILES.values():
        groups.setdefault(str(value(profile)), []).append(profile.name)
    return ", ".join(f"{default} for {'/'.join(names)}" for default, names in groups.items())


def _per_engine(values: Mapping[DbEngine, object]) -> str:
    return ", ".join(f"{value} for {engine}" for engine, value in values.items())


GLANCE_URL = f"http://controllerHost:{GLANCE_PORT}"


class StackConfig(BaseModel):
    """The `glance:*` keys a stack file may set: each key's type, default and description (the
    README's "meaning and rules", in Markdown), in the order the README lists them."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True, strict=False)

    @model_validator(mode="before")
    @classmethod
    def _drop_unset(cls, values: Any) -> Any:
        """A key without a default of its own is unset when it holds its Pulumi.yaml default."""
        if not isinstance(values, dict):
            return values
        return {key: value for key, value in values.items() if not (key in KEYS and KEYS[key].unset_by(value))}

    profile: ProfileName = Field(
        description="Distro and Glance release: clearlinux (Liberty), rhel (Zed) or debian (Zed)."
    )
    environment: Environment | None = Field(
        None,
        description=(
            "What the stack is: production, staging, development or lab. The policy pack requires it and "
            "applies its production rules to production."
        ),
    )
    package_version: str | None = Field(
        None,
        description=(
            "The exact version of Glance's packages to install (unset: whatever the package manager resolves, once). "
            "debian: the Debian version of glance-api, glance-common and python3-glance (e.g. `2:25.1.0-2+deb12u5`); "
            "rhel: VERSION-RELEASE of openstack-glance and python3-glance (e.g. `25.1.0-1.el9`); clearlinux: the OS "
            "release swupd moves to (e.g. `31000`). Pinning is recommended: changing it upgrades (or downgrades) "
            "the API hosts one after another, drained, with the schema step; see [Updates](#updates)."
        ),
    )
    controller_host: HostName = Field(
        "controller",
        description="Host name of the controller in service URLs and config files. A host (name or IPv4/IPv6).",
    )
    api_hosts: list[HostName] | None = derived(
        "SSH addresses of the Glance API hosts (default [controllerHost]), each a host, none twice; several need "
        "stores they all reach and publicUrl, see [Several API hosts](#several-api-hosts)."
    )
    ssh_port: Port = Field(22, description="SSH port of the API host, 1-65535.")
    ssh_user: Annotated[str, AfterValidator(validators.login_name)] = Field(
        "root",
        description=(
            "SSH user with root rights on the API host: a user name (letter or `_`, then letters, digits, `_`, "
            "`.`, `-`; at most 32), not empty."
        ),
    )
    ssh_private_key: Annotated[SecretStr, AfterValidator(_private_key)] = Field(
        description=(
            "SSH private key for the API host: the key file's text in OpenSSH or PEM armour "
            "(`-----BEGIN ... PRIVATE KEY-----` to `-----END ...-----`), without a passphrase; not a path, not a "
            "public key. Secret, required."
        )
    )
    ssh_host_keys: list[KnownHost] = Field(
        default_factory=list,
        description=(
            "The SSH host key every host the program logs in to must present: `HOST TYPE BASE64` lines as "
            "`ssh-keyscan -t ed25519 HOST` prints them, checked out of band. Required for every API host and the "
            "database host; see [SSH host keys](#ssh-host-keys)."
        ),
    )
    insecure_ignore_host_keys: bool = Field(
        False,
        description=(
            "Skip SSH host key verification (the secrets go to whoever answers). For throwaway labs only; the "
            "policy pack refuses it in production."
        ),
    )

    db_engine: DbEngine | None = derived(
        f"mysql or postgresql (default: the profile's, {_per_profile(lambda p: p.default_db_engine)})."
    )
    db_host: HostName | None = derived("Database host as Glance connects to it (default controllerHost). A host.")
    db_port: Port | None = derived(f"Database port, 1-65535 (default {_per_engine(DB_PORTS)}).")
    db_name: Annotated[str, AfterValidator(validators.database_name)] = Field(
        "glance",
        description=(
            "Glance database name: a database identifier, not one of the server's own (`mysql`, "
            "`information_schema`, `performance_schema`, `sys`, `postgres`, `template0`, `template1`). On "
            "MySQL/MariaDB without `_` (GRANT reads `_` and `%` as wildcards, so the grant would cover other "
            "databases)."
        ),
    )
    db_user: Annotated[str, AfterValidator(validators.database_user)] = Field(
        "glance",
        description=(
            "Glance database account: a database identifier (MySQL: at most 32 characters), not an administrator "
            "or reserved account (`root`, `postgres`, `mysql`, `admin`, `pg_*`, `public`, ..., nor `dbAdminUser`): "
            "the program sets its password and destroy drops it."
        ),
    )
    db_password: SecretStr | None = derived(
        "Glance database password. Secret; generated and kept in state when absent."
    )
    db_admin_host: HostName | None = derived(
        "Database host as the machine running Pulumi reaches it (default dbHost). A host."
    )
    db_admin_port: Port | None = derived(
        "Database port as the machine running Pulumi reaches it, 1-65535 (default dbPort)."
    )
    db_admin_user: Annotated[str, AfterValidator(validators.admin_user)] | None = derived(
        f"Database administrator (default {_per_engine(DB_ADMINS)}): letters, digits, `_`, `.`, `@`, `-`."
    )
    db_admin_password: Password = Field(description="Database administrator password, not empty. Secret, required.")
    db_ssh_host: HostName | None = derived(
        "SSH address of the database host, where the MySQL account is made with the mysql client and the "
        "pg_hba.conf line is added (default the API host). A host."
    )
    pg_hba_path: Annotated[str, AfterValidator(validators.pg_hba_path)] | None = derived(
        "Absolute path (no `..`) of a file named `pg_hba.conf` (default: the profile's). postgresql only."
    )
    pg_hba_address: Annotated[str, AfterValidator(_pg_hba_address)] | None = derived(
        "Address field of the pg_hba line: a CIDR (IPv4 or IPv6) or a host (default controllerHost, /32 or /128 "
        "for an IP). postgresql only."
    )
    pg_hba_method: Literal["md5", "scram-sha-256"] = Field(
        "md5", description="md5 (as in the guide; accepts scram-stored passwords) or scram-sha-256."
    )

    keystone_url: HttpUrl | None = derived(
        "Public Keystone URI for authtoken's auth_uri / www_authenticate_uri "
        f"(default http://controllerHost:{KEYSTONE_PORT}). A URL."
    )
    # Normalised without /v3 (Glance's auth_url); keystoneApiUrl with it (the providers').
    keystone_auth_url: validators.KeystoneBaseUrl | None = derived(
        f"Keystone auth_url in Glance's config (default: port {LIBERTY.keystone_auth_port} on Liberty, "
        f"{ZED.keystone_auth_port} on Zed). A URL, with or without `/v3` (`http://controller:5000/v3` and "
        "`http://controller:5000` mean the same; Glance gets it without)."
    )
    keystone_api_url: validators.KeystoneV3Url | None = derived(
        "Keystone v3 URL the machine running Pulumi uses (default keystoneAuthUrl + /v3). A URL, with or without "
        "`/v3` (the program adds it)."
    )
    keystone_admin_user: Name = Field(
        "admin", description="Keystone administrator the providers authenticate as. A Keystone name."
    )
    keystone_admin_password: Password = Field(
        description="Keystone administrator password, not empty. Secret, required."
    )
    keystone_admin_project: Name = Field("admin", description="Project of the Keystone administrator. A Keystone name.")
    domain_id: Annotated[str, AfterValidator(validators.name(64))] = Field(
        "default", description="Keystone domain id of users and projects. A Keystone name (at most 64)."
    )
    domain_name: Name = Field(
        "Default", description="Keystone domain name, used where Zed config names domains. A Keystone name."
    )
    region: Name = Field("RegionOne", description="Keystone region of the endpoints. A Keystone name.")
    service_project: Annotated[str, AfterValidator(validators.project_name)] = Field(
        "service",
        description="Existing project that gets the glance user's admin role. A Keystone name without `:`.",
    )
    glance_user: Name = Field(
        "glance", description="Keystone user of the Image service. A Keystone name, not keystoneAdminUser."
    )
    glance_password: SecretStr | None = derived(
        "Keystone password of the glance user. Secret; generated and kept in state when absent."
    )

    public_url: HttpUrl | None = derived(f"Public image endpoint (default {GLANCE_URL}). A URL.")
    load_balancer_check_seconds: Annotated[int, Field(ge=0, le=300)] = Field(
        3,
        description=(
            "With several apiHosts, how long the load balancer's health checks take to see a host go or come back "
            "(interval x fall, interval x rise): a restarting host waits that long once drained, before it stops, "
            "and once undrained, before the next host drains. 0-300."
        ),
    )
    internal_url: HttpUrl | None = derived(
        f"Internal image endpoint, also used by the readiness check on the host (default {GLANCE_URL}). A URL."
    )
    admin_url: HttpUrl | None = derived(f"Admin image endpoint (default {GLANCE_URL}). A URL.")
    tls_certificate: Annotated[str, AfterValidator(certificates.certificate_chain)] | None = Field(
        None,
        description=(
            "TLS certificate chain each API host serves on port 9292 (HAProxy in front of glance-api): PEM "
            "certificates, the server's own first, whose subjectAltName covers every https endpoint's host and, "
            "with several apiHosts, each API host. With it the endpoints default to https. See [TLS](#tls)."
        ),
    )
    tls_private_key: Annotated[SecretStr, AfterValidator(certificates.private_key)] | None = Field(
        None,
        description=(
            "Private key of tlsCertificate: unencrypted PEM, RSA or ECDSA, the file's whole text. Secret; required "
            "with tlsCertificate."
        ),
    )
    tls_ca_bundle: Annotated[str, AfterValidator(certificates.ca_bundle)] | None = Field(
        None,
        description=(
            "PEM CA certificates that the program (the OpenStack providers, the readiness gates, the image upload) "
            "and Glance (Keystone's authtoken, the Swift and Cinder stores) trust, e.g. a private CA; unset: the "
            "system's. tlsCertificate must chain to it."
        ),
    )
    tls_termination: Literal["hosts", "loadBalancer"] = Field(
        "hosts",
        description=(
            "Where TLS for the https endpoints ends: hosts (each API host, with tlsCertificate; a load balancer "
            "passes TCP through or re-encrypts) or loadBalancer (the operator's load balancer, with its own "
            "certificate; the hosts serve plain http to it). See [TLS](#tls)."
        ),
    )
    image_store_path: validators.DataDirectory | None = derived(
        f"The file store's directory when stores is unset (default {DEFAULT_STORE_PATH}). A directory (see the "
        "rules above)."
    )
    stores: list[StoreConfig] | None = derived(
        "Image stores, each {id, type: file|swift|rbd|s3|cinder, ...options}; unset: one file store at "
        "imageStorePath. See [Image stores](#image-stores)."
    )
    default_store: str | None = derived("Id of the store new images go to (required with several stores).")
    import_methods: list[Method] | None = derived(
        f"Interoperable image import methods to enable: {', '.join(f'`{m}`' for m in IMPORT_METHODS)}, each once "
        f"(default: the release's, {', '.join(ZED.import_methods)} on Zed; Liberty has no import). See "
        "[Image import](#image-import)."
    )
    import_plugins: list[PluginConfig] = Field(
        default_factory=list,
        description=(
            f"Import plugins, in the order they run, each {{name, ...options}}; name one of {', '.join(PLUGIN_NAMES)}, "
            "each once. `image_conversion`: `outputFormat` (raw; the release's formats, Zed raw, qcow2 or vmdk), "
            "installs qemu-img on the API hosts. `inject_image_metadata`: `properties` (an object of key: value), "
            "`ignoreUserRoles` ([admin]). See [Image import](#image-import)."
        ),
    )
    web_download_allowed_schemes: Annotated[list[WebDownloadScheme], Field(min_length=1)] = Field(
        default_factory=lambda: list(WEB_DOWNLOAD_SCHEMES),
        description="URL schemes web-download may fetch: http and/or https, at least one.",
    )
    web_download_allowed_ports: Annotated[list[Port], Field(min_length=1)] = Field(
        default_factory=lambda: [80, 443],
        description="Ports web-download may fetch from, 1-65535, at least one (Glance's default [80, 443]).",
    )
    web_download_allowed_hosts: list[HostName] = Field(
        default_factory=list,
        description=(
            "The only hosts web-download may fetch from (hosts); empty: any host but the disallowed ones. A "
            "private, loopback or link-local address needs webDownloadAllowPrivate. Not with "
            "webDownloadDisallowedHosts (Glance would ignore those)."
        ),
    )
    web_download_disallowed_hosts: list[HostName] = Field(
        default_factory=list,
        description=(
            "Hosts web-download may not fetch from, beside the ones the program always denies (the stack's own "
            "hosts and services, localhost, cloud metadata addresses); used when webDownloadAllowedHosts is empty."
        ),
    )
    web_download_allow_private: bool = Field(
        False,
        description=(
            "Let webDownloadAllowedHosts open private (RFC 1918, fc00::/7), loopback or link-local addresses to "
            "web-download; without it such an item is refused. See [Image import](#image-import)."
        ),
    )
    worker_urls: list[HttpUrl] | None = derived(
        "With several apiHosts: each host's own Glance URL (worker_self_reference_url), in apiHosts order, "
        f"distinct, not the load balancer's (default http://apiHost:{GLANCE_PORT}); the other API hosts must reach "
        "it. See [Several API hosts](#several-api-hosts)."
    )
    memcached_servers: list[Annotated[str, AfterValidator(validators.memcached_server)]] = Field(
        default_factory=list,
        description=(
            "authtoken memcached_servers: `host:port` items (Zed guides set controller:11211), an IPv6 address as "
            "`[fd00::11]:11211` (rendered `inet6:[fd00::11]:11211`); no URLs, no empty items."
        ),
    )
    debug: bool = Field(False, description="Set [DEFAULT] debug in glance-api.conf.")
    api_options: list[OptionLine] = Field(
        default_factory=list,
        description=(
            "Extra glance-api.conf options as `section.option=value` items (e.g. DEFAULT.workers=2), applied "
            "last: section and option of letters, digits, `_`, `-`; not an option the program sets "
            "(`[database]`, `[paste_deploy]`, Keystone's credentials, `[oslo_limit]`'s account; section names "
            "compared as oslo.config reads them, case-insensitively), no credential (see "
            "[Options that hold credentials](#options-that-hold-credentials))."
        ),
    )
    api_secret_options: list[SecretOptionLine] = Field(
        default_factory=list,
        description=(
            "Extra options that hold credentials (e.g. `oslo_messaging_notifications.transport_url=rabbit://...`), "
            "`section.option=value` items as for apiOptions, written to the 0640 credentials file, never "
            "glance-api.conf. Set each item with `--secret --path 'glance:apiSecretOptions[N]'`."
        ),
    )

    keystone_limits: bool = Field(
        False, description="Keystone unified limits via [oslo_limit], as in the RHEL/Zed notes (Zed only)."
    )
    limits_user: Name = Field(
        "service-oslo",
        description=(
            "Keystone service account of oslo_limit, given the system-scope reader role. A Keystone name, not "
            "glanceUser or keystoneAdminUser."
        ),
    )
    limits_password: SecretStr | None = derived(
        "Password of the limits user. Secret; generated and kept in state when absent."
    )
    image_size_total: Limit = Field(
        1000,
        description=(
            "Registered limit image_size_total, MiB; 0-2147483647 (Keystone keeps limits as 32-bit integers), as "
            "for the three below."
        ),
    )
    image_stage_total: Limit = Field(1000, description="Registered limit image_stage_total, MiB.")
    image_count_total: Limit = Field(100, description="Registered limit image_count_total.")
    image_count_uploading: Limit = Field(10, description="Registered limit image_count_uploading.")

    image_name: Name = Field(
        "cirros", description="Name of the verification image. A Keystone-style name (not empty, at most 255)."
    )
    cirros_source: Annotated[str, AfterValidator(_cirros_source)] = Field(
        GUIDE_CIRROS_URL,
        description=(
            "The image file: a URL, which the machine running Pulumi downloads (not a link-local or cloud metadata "
            "address such as 169.254.169.254 or fd00:ec2::254), or the absolute path (no `..`) of a regular file "
            "that exists on that machine, not in a home directory, `/root`, `/etc` or `/proc`, `/sys`, `/dev`, "
            "`/run`, `/boot` (symbolic links are followed). Default: the guide's CirrOS 0.3.4."
        ),
    )
    # algorithm:hex once validated; required for a URL other than the guide's.
    cirros_checksum: Annotated[str, AfterValidator(_checksum)] | None = derived(
        "SHA-256 (64 hex digits, as `sha256sum` prints it) or MD5 (32, as Glance's `checksum` shows it) of the "
        "image file, optionally prefixed `sha256:` or `md5:`. Required with a cirrosSource URL (default: the guide "
        f"image's MD5 `{GUIDE_CIRROS_MD5}` for the guide's URL); optional for a local file. Checked before the "
        "upload: a URL is downloaded into `$GLANCE_PULUMI_CACHE/images/` (default "
        "`/var/cache/glance-pulumi/images/`, kept as a cache; keep that root the same on every machine deploying "
        "the stack) and moved there only if it matches. A mismatch fails the `glance-image-source` step, naming "
        "both checksums, and nothing is uploaded."
    )
    image_visibility: Visibility = Field(
        "public",
        description=(
            "Visibility of the image: public (as in the guide), private, shared or community (Liberty: public or "
            "private)."
        ),
    )
    protect_data: bool = Field(True, description="Protect the database and the image store from deletion.")

    @property
    def hosts(self) -> list[str]:
        """The API hosts: apiHosts, or else the controller alone."""
        return self.api_hosts or [self.controller_host]

    @model_validator(mode="after")
    def _consistent(self) -> StackConfig:
        """The rules that span keys; every broken one is reported (one `key: message` a line)."""
        profile = PROFILES[self.profile]
        problems = [
            *self._check_stores(profile),
            *self._check_api_hosts(),
            *self._check_host_keys(),
            *self._check_database(),
            *self._check_identity(),
            *self._check_image(profile),
            *self._check_import(profile),
            *self._check_worker_urls(),
            *self._check_tls(),
            *self._check_package_version(profile),
        ]
        if self.keystone_limits and not profile.release.supports_keystone_limits:
            problems.append(
                f"keystoneLimits: Keystone unified limits need Glance Zed or later; "
                f"profile {self.profile} deploys {profile.release.name}"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def engine(self) -> DbEngine:
        return self.db_engine or PROFILES[self.profile].default_db_engine

    @property
    def database_admin_user(self) -> str:
        return self.db_admin_user or DB_ADMINS[self.engine]

    @property
    def database_host(self) -> str:
        """The database host as Glance connects to it."""
        return self.db_host or self.controller_host

    @property
    def database_ssh_host(self) -> str:
        """The database host over SSH. The guides run the database on the controller: reach it
        like the first API host."""
        db_host = self.database_host
        return self.db_ssh_host or (self.hosts[0] if db_host == self.controller_host else db_host)

    @property
    def ssh_hosts(self) -> list[str]:
        """Every host the program reaches over SSH: the API hosts and the database host."""
        return list(dict.fromkeys([*self.hosts, self.database_ssh_host]))

    @property
    def pinned_host_keys(self) -> dict[str, str]:
        """sshHostKeys as SSH address -> `TYPE BASE64`."""
        pins: dict[str, str] = {}
        for line in self.ssh_host_keys:
            field, kind, key = line.split()
            pins[known_host_address(field)[0]] = f"{kind} {key}"
        return pins

    def _check_database(self) -> Iterator[str]:
        engine = self.engine
        pg_only = {"pgHbaPath": self.pg_hba_path, "pgHbaAddress": self.pg_hba_address}
        misplaced = [key for key, value in pg_only.items() if value is not None]
        if engine != "postgresql" and misplaced:
            yield f"{', '.join(misplaced)}: only used with dbEngine postgresql, not {engine}"
        if engine == "mysql" and "_" in self.db_name:
            # GRANT ... ON `glance_db`.* reads '_' (and '%') as wildcards: the grant would cover
            # every database whose name matches.
            yield (
                "dbName: on MySQL/MariaDB a database name may not contain '_', which GRANT reads as a wildcard "
                "matching other databases too; use letters and digits, e.g. glancedb"
            )
        if engine == "mysql" and len(self.db_user) > 32:
            yield "dbUser: MySQL account names are at most 32 characters"
        if self.db_user.lower() == self.database_admin_user.lower():
            yield (
                f"dbUser: {self.db_user!r} is the database administrator (dbAdminUser), whose password the "
                "program would set and which destroy would drop; choose an account of Glance's own, e.g. glance"
            )

    def _check_identity(self) -> Iterator[str]:
        admin = self.keystone_admin_user
        if self.glance_user == admin:
            yield (
                f"glanceUser: {admin!r} is the Keystone administrator (keystoneAdminUser); the image service needs "
                "a user of its own, e.g. glance"
            )
        if self.keystone_limits and self.limits_user == self.glance_user:
            yield (
                f"limitsUser: the same name as glanceUser ({self.glance_user!r}) would make two Keystone users "
                "with one name; choose another, e.g. service-oslo"
            )
        if self.keystone_limits and self.limits_user == admin:
            yield f"limitsUser: {admin!r} is the Keystone administrator (keystoneAdminUser); choose another"

    def _check_image(self, profile: Profile) -> Iterator[str]:
        remote = not self.cirros_source.startswith("/")
        if remote and self.cirros_checksum is None and self.cirros_source != GUIDE_CIRROS_URL:
            yield (
                "cirrosChecksum: required with a cirrosSource URL: the image's SHA-256 (64 hex digits) or MD5 "
                "(32), checked on the machine running Pulumi before the upload"
            )
        if profile.release.name == "liberty" and self.image_visibility not in ("public", "private"):
            yield f"imageVisibility: Glance liberty knows public and private images only, not {self.image_visibility}"

    @property
    def enabled_import_methods(self) -> list[str]:
        return self.import_methods or list(PROFILES[self.profile].release.import_methods)

    def _import_keys_set(self) -> list[str]:
        """The import keys given other values than their defaults, in declaration order."""
        return [
            KEYS_BY_FIELD[name]
            for name, field in StackConfig.model_fields.items()
            if name in self.model_fields_set
            and name.startswith(("import_", "web_download_", "worker_urls"))
            and getattr(self, name) != field.get_default(call_default_factory=True)
        ]

    def _check_import(self, profile: Profile) -> Iterator[str]:
        release = profile.release
        if not release.has_import:
            for key in self._import_keys_set():
                yield (
                    f"{key}: Glance {release.name} (profile {profile.name}) has no interoperable image import (it came "
                    "with Queens); remove it"
                )
            return
        methods = self.enabled_import_methods
        if len(set(methods)) < len(methods):
            yield "importMethods: a method is listed twice; list each once"
        names = [plugin.name for plugin in self.import_plugins]
        if len(set(names)) < len(names):
            yield "importPlugins: a plugin is listed twice; list each once"
        for index, plugin in enumerate(self.import_plugins):
            if isinstance(plugin, ImageConversion) and plugin.output_format not in release.conversion_formats:
                yield (
                    f"importPlugins[{index}].outputFormat: Glance {release.name} converts to "
                    f"{', '.join(release.conversion_formats)}, not {plugin.output_format!r}"
                )
        if "web-download" not in methods:
            for key in self._import_keys_set():
                if key.startswith("webDownload"):
                    yield f"{key}: only used with web-download in importMethods"
            return
        if self.web_download_allowed_hosts and self.web_download_disallowed_hosts:
            yield (
                "webDownloadDisallowedHosts: Glance ignores disallowed hosts beside webDownloadAllowedHosts (only the "
                "allowed ones are fetched from); give one of the two"
            )
        if self.web_download_allow_private and not self.web_download_allowed_hosts:
            yield (
                "webDownloadAllowPrivate: opens the addresses listed in webDownloadAllowedHosts; list the private "
                "hosts web-download may fetch from there"
            )
        if not self.web_download_allow_private:
            for index, host in enumerate(self.web_download_allowed_hosts):
                if closed_address(host):
                    yield (
                        f"webDownloadAllowedHosts[{index}]: {host} is a private, loopback or link-local address, "
                        "which web-download may fetch from only if you open it: set webDownloadAllowPrivate: true"
                    )

    def _check_worker_urls(self) -> Iterator[str]:
        """Each API host records its own URL on the images it stages; another host proxies the
        import there, so the URLs must tell the hosts apart."""
        if self.worker_urls is None:
            return
        hosts = self.hosts
        if len(hosts) == 1:
            yield "workerUrls: only used with several apiHosts (one host imports what it staged itself)"
            return
        if len(self.worker_urls) != len(hosts):
            yield (
                f"workerUrls: give one URL per API host, in apiHosts order ({len(hosts)}), not {len(self.worker_urls)}"
            )
        if len(set(self.worker_urls)) < len(self.worker_urls):
            yield "workerUrls: a URL is listed twice; each API host needs its own"
        shared = set(self.endpoint_urls.values()) & set(self.worker_urls)
        if shared:
            yield (
                f"workerUrls: {', '.join(sorted(u for u in shared if u))} is the load balancer's (an image endpoint); "
                "each host's own URL is needed, or an import would be proxied back to any host"
            )

    @property
    def endpoint_urls(self) -> dict[str, str]:
        """The image endpoints by key: as set, else one host's default (https when it serves
        tlsCertificate), or with several hosts the load balancer's publicUrl."""
        scheme = "https" if self.tls_certificate is not None and self.tls_termination == "hosts" else "http"
        default = f"{scheme}://{validators.url_host(self.controller_host)}:{GLANCE_PORT}"
        if len(self.hosts) > 1 and self.public_url:
            default = self.public_url
        return {
            "publicUrl": self.public_url or default,
            "internalUrl": self.internal_url or default,
            "adminUrl": self.admin_url or default,
        }

    def _check_tls(self) -> Iterator[str]:
        """Every https endpoint has something to serve it, and what serves it is what clients accept."""
        if (self.tls_certificate is None) != (self.tls_private_key is None):
            given, missing = (
                ("tlsCertificate", "tlsPrivateKey")
                if self.tls_private_key is None
                else ("tlsPrivateKey", "tlsCertificate")
            )
            yield f"{missing}: required with {given}: the API hosts serve the certificate with its key"
            return
        urls = self.endpoint_urls
        https = {key: url for key, url in urls.items() if url.startswith("https://")}
        if self.tls_termination == "loadBalancer":
            if self.tls_certificate is not None:
                yield (
                    "tlsCertificate: not used with tlsTermination loadBalancer (the load balancer serves its own "
                    "certificate, the hosts plain http); remove it and tlsPrivateKey, or set tlsTermination hosts"
                )
            if not https:
                yield (
                    "tlsTermination: loadBalancer, but no image endpoint is https://; set publicUrl to the load "
                    "balancer's https:// URL"
                )
            return
        if self.tls_certificate is None or self.tls_private_key is None:
            for url, keys in _by_value(https).items():
                also = f" (so is {', '.join(keys[1:])})" if keys[1:] else ""
                yield (
                    f"{keys[0]}: {url} is https://{also}, but nothing would serve TLS there: set "
                    "glance:tlsCertificate and glance:tlsPrivateKey (each API host serves them), or "
                    "glance:tlsTermination loadBalancer if a load balancer in front ends TLS"
                )
            return
        for key, url in urls.items():
            if key not in https:
                yield f"{key}: {url} is http://, but the API hosts serve https (tlsCertificate); use https://"
        if not certificates.key_matches(self.tls_certificate, self.tls_private_key):
            yield (
                "tlsPrivateKey: is not the key of tlsCertificate's first certificate (their public keys differ); "
                "give the certificate's own key, and the server's certificate first in the chain"
            )
        uncovered = self._uncovered_hosts(https)
        named = ", ".join(certificates.names(self.tls_certificate)) or "no name (no subjectAltName)"
        for host, where in uncovered.items():
            yield (
                f"tlsCertificate: does not cover {host} ({where}): its subjectAltName names {named}; clients check "
                "the host name they connect to against it"
            )
        if self.tls_ca_bundle is not None and not uncovered:
            host = next((urlsplit(url).hostname or "" for url in https.values()), self.hosts[0])
            reason = certificates.untrusted(self.tls_certificate, self.tls_ca_bundle, host)
            if reason is not None:
                yield f"tlsCertificate: a client trusting tlsCaBundle refuses it: {reason}"

    def _uncovered_hosts(self, https: Mapping[str, str]) -> dict[str, str]:
        """Host -> where it comes from, for each host a client verifies the certificate for that it does
        not cover: the https endpoints' hosts and, with several API hosts, each one (their readiness
        gates, and a load balancer that re-encrypts, connect to them by that name)."""
        assert self.tls_certificate is not None
        hosts: dict[str, list[str]] = {}
        for key, url in https.items():
            hosts.setdefault(urlsplit(url).hostname or "", []).append(key)
        if len(self.hosts) > 1:
            for host in self.hosts:
                hosts.setdefault(host, []).append("apiHosts")
        return {
            host: ", ".join(keys) for host, keys in hosts.items() if not certificates.covers(self.tls_certificate, host)
        }

    def _check_package_version(self, profile: Profile) -> Iterator[str]:
        pin = profile.version_pin
        if self.package_version is not None and not re.fullmatch(pin.pattern, self.package_version):
            yield (
                f"packageVersion: {self.package_version!r} is not a {profile.name} package version; "
                f"give it as the package manager shows it, e.g. {pin.example}"
            )

    def _check_host_keys(self) -> Iterator[str]:
        """Every SSH host has one pinned key (unless the stack opts out), and no key pins a stranger."""
        hosts = self.ssh_hosts
        pins = self.pinned_host_keys
        if len(pins) < len(self.ssh_host_keys):
            yield "sshHostKeys: a host is listed twice; pin one key per host"
        ports = {known_host_address(line.split()[0])[1] for line in self.ssh_host_keys}
        if ports - {None, self.ssh_port}:
            yield f"sshHostKeys: a [host]:port line names another port than sshPort ({self.ssh_port})"
        strangers = sorted(set(pins) - set(hosts))
        if strangers:
            yield (
                f"sshHostKeys: {', '.join(strangers)} is not a host this stack reaches over SSH "
                f"({', '.join(hosts)}); a typo would leave the real host unpinned"
            )
        if self.insecure_ignore_host_keys:
            return
        missing = [host for host in hosts if host not in pins]
        if missing:
            port = "" if self.ssh_port == 22 else f"-p {self.ssh_port} "
            yield (
                f"sshHostKeys: no pinned SSH host key for {', '.join(missing)}; every host the program logs in to "
                "must prove who it is before it receives passwords. Get each key, compare its fingerprint "
                "(`ssh-keygen -lf`) with the host's own console, then add the line: "
                f"`ssh-keyscan {port}-t ed25519 {missing[0]}` prints it"
            )

    def _check_api_hosts(self) -> Iterator[str]:
        """Several API hosts serve one catalog: every store must be one they all reach."""
        hosts = self.hosts
        if len(hosts) == 1:
            return
        if len(set(hosts)) < len(hosts):
            yield "apiHosts: a host is listed twice; list each API host once"
        if self.stores is None:
            yield (
                f"apiHosts: {len(hosts)} hosts would each keep images in their own file store (imageStorePath); "
                "declare stores with a shared default (swift, rbd, s3 or cinder), or a file store with "
                "shared: true on a mount every host has"
            )
        else:
            local = [f"stores[{i}] ({s.id})" for i, s in enumerate(self.stores) if s.type == "file" and not s.shared]
            if local:
                yield (
                    f"apiHosts: {len(hosts)} hosts, but {', '.join(local)} is a file store on each host's own disk: "
                    "an image stored through one host could not be read through another; set shared: true if every "
                    "host mounts the same directory (e.g. NFS), or use swift, rbd, s3 or cinder"
                )
        if self.public_url is None:
            yield (
                f"publicUrl: required with {len(hosts)} apiHosts: the load balancer's URL in front of them "
                "(internalUrl and adminUrl default to it)"
            )

    def _check_stores(self, profile: Profile) -> Iterator[str]:
        """The rules that span store items (each item checks its own options)."""
        if self.stores is None:
            if self.default_store is not None:
                yield "defaultStore: only used with stores; declare the stores first"
            return
        if self.image_store_path is not None:
            yield "imageStorePath: not used with stores; give the file store's path as its `path`"
        if not self.stores:
            yield "stores: declare at least one store, or leave stores unset for the file store"
            return
        ids = [store.id for store in self.stores]
        doubled = sorted({store_id for store_id in ids if ids.count(store_id) > 1})
        if doubled:
            yield f"stores: id {', '.join(map(repr, doubled))} is used more than once; ids must be unique"
        release = profile.release
        for index, store in enumerate(self.stores):
            if store.type not in release.store_types:
                supported = ", ".join(t for t in STORE_TYPES if t in release.store_types)
                yield (
                    f"stores[{index}].type: Glance {release.name} (profile {profile.name}) has no {store.type} "
                    f"store; supported: {supported}"
                )
        types = [store.type for store in self.stores]
        if not release.multi_store and len(set(types)) < len(types):
            twice = sorted({t for t in types if types.count(t) > 1})
            yield (
                f"stores: Glance {release.name} configures one store per type (no multi-store); "
                f"{', '.join(twice)} is declared more than once"
            )
        if self.default_store is None and len(self.stores) > 1:
            yield f"defaultStore: required with several stores; one of: {', '.join(ids)}"
        if self.default_store is not None and self.default_store not in ids:
            yield f"defaultStore: {self.default_store!r} is not a store id; one of: {', '.join(ids)}"
        yield from self._check_store_files()

    def _check_store_files(self) -> Iterator[str]:
        """File stores do not share or nest directories."""
        assert self.stores is not None
        paths = [(index, store.path) for index, store in enumerate(self.stores) if isinstance(store, FileStore)]
        if len({path for _, path in paths}) < len(paths):
            yield "stores: two file stores have the same path; each needs its own directory"
        for index, path in paths:
            for other, outer in paths:
                if path != outer and validators.within(path, outer):
                    yield (
                        f"stores[{index}].path: {path} is inside stores[{other}].path ({outer}); file stores need "
                        "directories apart (destroying one would remove the other's images)"
                    )


# ---- the schema as Pulumi.yaml declares it --------------------------------------------------

# What Pulumi.yaml declares as the default of a key that has none of its own. Pulumi's project
# config schema makes every key without a default required, so such a key declares the empty
# value of its type, and the program reads that value as unset.
EMPTY: Mapping[str, object] = {"string": "", "integer": 0, "boolean": False, "array": []}


@dataclass(frozen=True)
class Key:
    """One `glance:*` key, as StackConfig declares it and Pulumi.yaml and the README show it."""

    name: str
    # Pulumi's config type (string, integer, boolean, array), and an array's item type.
    type: str
    items: str | None
    # A credential: it must be set with `pulumi config set --secret`.
    secret: bool
    required: bool
    # The program's default; None when the key has none of its own (derived, or absent).
    default: Any
    # Derived from other keys, as the description says.
    derived: bool
    description: str

    @property
    def schema_default(self) -> Any:
        """The default Pulumi.yaml declares (a required key declares none)."""
        return EMPTY[self.type] if self.default is None else self.default

    def unset_by(self, value: Any) -> bool:
        """`value` is this key's Pulumi.yaml default standing for "no default of its own"."""
        return not self.required and self.default is None and is_unset(self.name, value)


def is_unset(key: str, value: Any) -> bool:
    """`value` is the empty value of the key's type: as YAML writes it, or as the engine hands it
    over (every value as text: a number's 0 as "0", a list's [] as "[]"). For a string key only ""
    (a password "0" or "[]" is a password); anything else (a store's option) counts as a string."""
    empty = EMPTY[KEYS[key].type] if key in KEYS else ""
    if type(value) is type(empty) and value == empty:
        return True
    return not isinstance(empty, str) and value == json.dumps(empty)


def _pulumi_type(annotation: Any) -> tuple[str, str | None]:
    """Pulumi's config type of a field's annotation, and an array's item type."""
    origin = get_origin(annotation)
    arguments = get_args(annotation)
    if origin is Annotated:
        return _pulumi_type(arguments[0])
    if origin is Union or origin is UnionType:
        alternatives = {_pulumi_type(argument) for argument in arguments if argument is not type(None)}
        if len(alternatives) != 1:
            raise TypeError(f"{annotation} has no single Pulumi config type")
        return alternatives.pop()
    if origin is list:
        return "array", _pulumi_type(arguments[0])[0]
    if origin is Literal:
        return _pulumi_type(type(arguments[0]))
    kinds: dict[Any, str] = {bool: "boolean", int: "integer", str: "string", SecretStr: "string"}
    if annotation in kinds:
        return kinds[annotation], None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object", None
    raise TypeError(f"{annotation} has no Pulumi config type")


def _holds_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_holds_secret(argument) for argument in get_args(annotation))


def _key(name: str, field: FieldInfo) -> Key:
    kind, items = _pulumi_type(field.annotation)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    required = field.is_required()
    return Key(
        name=field.alias or name,
        type=kind,
        items=items,
        secret=_holds_secret(field.annotation),
        required=required,
        default=None if required else field.get_default(call_default_factory=True),
        derived=bool(extra.get("derived")),
        description=field.description or "",
    )


# Every key by its stack file name (camelCase, without the namespace), in declaration order.
KEYS: Mapping[str, Key] = {key.name: key for key in (_key(*item) for item in StackConfig.model_fields.items())}
KEYS_BY_FIELD: Mapping[str, str] = {name: to_camel(name) for name in StackConfig.model_fields}
# The credentials: keys whose type holds a SecretStr.
SECRET_KEYS = frozenset(name for name, key in KEYS.items() if key.secret)

# ---- reading and refusing -------------------------------------------------------------------

# Keys whose values are PEM text, which has lines.
PEM_KEYS = frozenset({"sshPrivateKey", "tlsCertificate", "tlsPrivateKey", "tlsCaBundle"})


def parse_config(raw: Mapping[str, Any], secret_keys: frozenset[str] = frozenset()) -> StackConfig:
    """Parse `glance:*` config values (key without namespace -> raw string).

    Every problem is collected and reported at once, each naming its key (list items with
    their index and field) and what is allowed; secret values are never shown."""
    errors = [
        f"{NAMESPACE}:{key} holds a credential: set it with `pulumi config set --secret {NAMESPACE}:{key}`"
        for key in sorted(SECRET_KEYS & raw.keys() - secret_keys)
        if not is_unset(key, raw[key])
    ]
    decoded = {key: _decode(key, value) for key, value in raw.items()}
    if "stores" not in secret_keys:
        errors.extend(_plaintext_store_secrets(decoded.get("stores")))
    # No control character in any string, secrets and store options included (a PEM key has lines).
    controls = [
        f"{NAMESPACE}:{problem}"
        for key, value in decoded.items()
        for problem in validators.control_characters(key, value, allow_newline=PEM_KEYS)
    ]
    errors.extend(controls)
    try:
        config = StackConfig.model_validate(decoded)
    except ValidationError as exc:
        refused = {problem.split(" ", 1)[0] for problem in controls}
        errors.extend(
            line for error in exc.errors() for line in _describe(error) if line.split(" ", 1)[0] not in refused
        )
    if errors:
        raise ConfigError("invalid stack config:\n  " + "\n  ".join(errors))
    return config


def read_config() -> StackConfig:
    """Pulumi's config, the program's one reader of it: every `glance:*` key, and which are secret."""
    prefix = f"{NAMESPACE}:"
    # Both sources: the language host sets the config map, PULUMI_CONFIG carries it otherwise.
    everything = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw = {key.removeprefix(prefix): value for key, value in everything.items() if key.startswith(prefix)}
    secret_keys = set(runtime_config.get_config_secret_keys_env())
    secret = frozenset(
        key for key in raw if prefix + key in secret_keys or runtime_config.is_config_secret(prefix + key)
    )
    return parse_config(raw, secret)


def _decode(key: str, value: Any) -> Any:
    """Pulumi passes structured values (lists, objects) as JSON text; a string key's value is
    text, whatever it looks like (a password "[1]")."""
    if key in KEYS and KEYS[key].type != "array":
        return value
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _plaintext_store_secrets(stores: Any) -> list[str]:
    if not isinstance(stores, list):
        return []
    return [
        f"{NAMESPACE}:stores[{index}].{option} holds a credential: set it with "
        f"`pulumi config set --secret --path '{NAMESPACE}:stores[{index}].{option}'`"
        for index, item in enumerate(stores)
        if isinstance(item, dict)
        for option in sorted(SECRET_OPTIONS & item.keys())
    ]


# Keys whose items are tagged unions: the tag's field and its values.
TAGGED_ITEMS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "stores": ("type", STORE_TYPES),
    "importPlugins": ("name", PLUGIN_NAMES),
}


def _location(loc: tuple[Any, ...]) -> list[str]:
    """Pydantic's error location as the stack file spells it: stores[1].keyring, not
    stores.1.rbd.keyring (the union tag it inserts after the index is left out)."""
    parts: list[str] = []
    tags = TAGGED_ITEMS[loc[0]][1] if loc and loc[0] in TAGGED_ITEMS else ()
    for index, part in enumerate(loc):
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
        elif index >= 2 and isinstance(loc[index - 1], int) and part in tags:
            continue
        else:
            parts.append(str(part))
    return parts


def _describe(error: Any) -> list[str]:
    """`glance:KEY message` lines of one pydantic error (a model-level error may hold several)."""
    location = _location(tuple(error["loc"]))
    message: str = error["msg"]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        tag, values = TAGGED_ITEMS[location[0].split("[")[0]]
        location.append(tag)
        message = f"must be one of: {', '.join(values)}"
    elif error["type"] == "extra_forbidden":
        message = "is not a known key (see the README's stack config reference)"
    elif error["type"] == "missing":
        secret = location and location[0] in SECRET_KEYS
        message = "is required" + (" (set it with `pulumi config set --secret`)" if secret else "")
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
        if location and location[-1].startswith(tuple(f"{key}[" for key in TAGGED_ITEMS)):
            # An item's own rule names the item's keys: "keyring: must be ..."
            keys, _, message = message.partition(": ")
            location[-1] += f".{keys}"
    if not location:
        # The cross-key rules: one `key: message` a line.
        return [f"{NAMESPACE}:{key} {text}" for key, _, text in (line.partition(": ") for line in message.splitlines())]
    return [f"{NAMESPACE}:{'.'.join(location)} {message}"]
