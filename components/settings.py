"""The stack config, parsed and validated once into typed settings.

`load_settings` takes the raw `glance:*` config values (strings, as Pulumi hands them
over) and either returns a frozen `Settings` or raises `ConfigError` with one message
naming every bad key and what it allows. Nothing else in the program reads config.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from pulumi import RunError
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

from components import validators
from components.profiles import PROFILES, DbEngine, Profile, ProfileName
from components.stores import (
    SECRET_OPTIONS,
    STORE_TYPES,
    FileStore,
    FileStoreConfig,
    Store,
    StoreConfig,
    StoreDefaults,
    resolve,
)
from components.validators import Checksum

NAMESPACE = "glance"

# Keys whose values are credentials: they must be set with `pulumi config set --secret`.
SECRET_KEYS = frozenset(
    {
        "sshPrivateKey",
        "dbAdminPassword",
        "dbPassword",
        "keystoneAdminPassword",
        "glancePassword",
        "limitsPassword",
        "apiSecretOptions",
    }
)

DEFAULT_STORE_PATH = "/var/lib/glance/images"
GLANCE_PORT = 9292
GUIDE_CIRROS_URL = "http://download.cirros-cloud.net/0.3.4/cirros-0.3.4-x86_64-disk.img"
# The guide's image as Glance's checksum shows it (MD5; the CirrOS site publishes MD5SUMS for 0.3.4).
GUIDE_CIRROS_MD5 = "ee1eca47dc88f4879d8a229cc70a07c6"
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
LIMIT_RESOURCES = ("image_size_total", "image_stage_total", "image_count_total", "image_count_uploading")


class ConfigError(RunError, ValueError):
    """The stack config is invalid; the message names each key and what it allows.

    A RunError, so the engine shows the message alone, without a Python traceback.
    """


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


def _secret_option_line(value: str) -> str:
    """An apiSecretOptions item; its value is never part of an error message."""
    _option_name(value)
    return value


def _known_host(value: str) -> str:
    """`HOST TYPE BASE64`, a line as `ssh-keyscan -t ed25519 HOST` prints it (known_hosts form)."""
    how = "as `ssh-keyscan -t ed25519 HOST` prints it, its fingerprint checked out of band (`ssh-keygen -lf`)"
    fields = value.split()
    if len(fields) < 3 or fields[1] not in HOST_KEY_TYPES:
        raise ValueError(f"items must be `HOST TYPE BASE64` lines, TYPE one of {', '.join(HOST_KEY_TYPES)}, {how}")
    host, kind, key = fields[:3]
    # ssh-keyscan writes [host]:port for a port other than 22.
    bracketed = re.fullmatch(r"\[(.+)\]:\d+", host)
    validators.host(bracketed.group(1) if bracketed else host)
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
SecretOptionLine = Annotated[str, AfterValidator(_secret_option_line)]
KnownHost = Annotated[str, AfterValidator(_known_host)]
Password = Annotated[SecretStr, AfterValidator(_password)]
# Pulumi's project config schema makes every key without a default required, so optional
# keys whose default is derived from other keys declare "" / 0 / [] there: that means unset.
# Each by its type: a number's 0 arrives as the text "0", a list's [] as "[]"; for a string
# key "0" or "[]" is a value (a password "0").
UNSET_MARKERS: tuple[object, ...] = ("", 0, [], "[]")
UNSET_NUMBER_MARKERS: tuple[object, ...] = (0, "0")
UNSET_LIST_MARKERS: tuple[object, ...] = ([], "[]")
UNSET_TEXT_MARKERS: tuple[object, ...] = ("",)


def _is_number(annotation: Any) -> bool:
    return annotation is int or any(_is_number(argument) for argument in get_args(annotation))


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list or any(_is_list(argument) for argument in get_args(annotation))


def _is_unset(value: Any, markers: tuple[object, ...]) -> bool:
    return any(type(value) is type(marker) and value == marker for marker in markers)


def _field(key: str) -> Any:
    """The StackConfig field of a stack file key (camelCase), or None for an unknown key."""
    return next((f for name, f in StackConfig.model_fields.items() if (f.alias or name) == key), None)


def _unset_markers(key: str) -> tuple[object, ...]:
    field = _field(key)
    if field is None:
        return UNSET_MARKERS
    if _is_number(field.annotation):
        return UNSET_NUMBER_MARKERS
    return UNSET_LIST_MARKERS if _is_list(field.annotation) else UNSET_TEXT_MARKERS


class StackConfig(BaseModel):
    """The `glance:*` keys a stack file may set; the README's reference mirrors this."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True, strict=False)

    @model_validator(mode="before")
    @classmethod
    def _drop_unset_markers(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        derived = {field.alias for field in cls.model_fields.values() if field.default is None}
        return {
            key: value
            for key, value in values.items()
            if not (key in derived and _is_unset(value, _unset_markers(key)))
        }

    profile: ProfileName
    controller_host: HostName = "controller"
    api_hosts: list[HostName] | None = None
    ssh_port: Port = 22
    ssh_user: Annotated[str, AfterValidator(validators.login_name)] = "root"
    ssh_private_key: Annotated[SecretStr, AfterValidator(_private_key)]
    ssh_host_keys: list[KnownHost] = Field(default_factory=list)
    insecure_ignore_host_keys: bool = False
    environment: Environment | None = None

    db_engine: DbEngine | None = None
    db_host: HostName | None = None
    db_port: Port | None = None
    db_name: Annotated[str, AfterValidator(validators.database_name)] = "glance"
    db_user: Annotated[str, AfterValidator(validators.database_user)] = "glance"
    db_password: SecretStr | None = None
    db_admin_host: HostName | None = None
    db_admin_port: Port | None = None
    db_admin_user: Annotated[str, AfterValidator(validators.admin_user)] | None = None
    db_admin_password: Password
    db_ssh_host: HostName | None = None
    pg_hba_path: Annotated[str, AfterValidator(validators.pg_hba_path)] | None = None
    pg_hba_address: Annotated[str, AfterValidator(_pg_hba_address)] | None = None
    pg_hba_method: Literal["md5", "scram-sha-256"] = "md5"

    keystone_url: HttpUrl | None = None
    # Normalised without /v3 (Glance's auth_url); keystoneApiUrl with it (the providers').
    keystone_auth_url: validators.KeystoneBaseUrl | None = None
    keystone_api_url: validators.KeystoneV3Url | None = None
    keystone_admin_user: Name = "admin"
    keystone_admin_password: Password
    keystone_admin_project: Name = "admin"
    domain_id: Annotated[str, AfterValidator(validators.name(64))] = "default"
    domain_name: Name = "Default"
    region: Name = "RegionOne"
    service_project: Annotated[str, AfterValidator(validators.project_name)] = "service"
    glance_user: Name = "glance"
    glance_password: SecretStr | None = None

    public_url: HttpUrl | None = None
    load_balancer_check_seconds: Annotated[int, Field(ge=0, le=300)] = 3
    internal_url: HttpUrl | None = None
    admin_url: HttpUrl | None = None
    image_store_path: validators.DataDirectory | None = None
    stores: list[StoreConfig] | None = None
    default_store: str | None = None
    memcached_servers: list[Annotated[str, AfterValidator(validators.memcached_server)]] = Field(default_factory=list)
    debug: bool = False
    api_options: list[OptionLine] = Field(default_factory=list)
    api_secret_options: list[SecretOptionLine] = Field(default_factory=list)

    keystone_limits: bool = False
    limits_user: Name = "service-oslo"
    limits_password: SecretStr | None = None
    image_size_total: Limit = 1000
    image_stage_total: Limit = 1000
    image_count_total: Limit = 100
    image_count_uploading: Limit = 10

    image_name: Name = "cirros"
    cirros_source: Annotated[str, AfterValidator(_cirros_source)] = GUIDE_CIRROS_URL
    # algorithm:hex once validated; required for a URL other than the guide's.
    cirros_checksum: Annotated[str, AfterValidator(_checksum)] | None = None
    image_visibility: Visibility = "public"
    protect_data: bool = True

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
        return self.db_admin_user or ("postgres" if self.engine == "postgresql" else "root")

    @property
    def database_ssh_host(self) -> str:
        """The database host over SSH. The guides run the database on the controller: reach it
        like the first API host."""
        db_host = self.db_host or self.controller_host
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
            host, kind, key = line.split()
            bracketed = re.fullmatch(r"\[(.+)\]:(\d+)", host)
            pins[bracketed.group(1) if bracketed else host] = f"{kind} {key}"
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

    def _check_host_keys(self) -> Iterator[str]:
        """Every SSH host has one pinned key (unless the stack opts out), and no key pins a stranger."""
        hosts = self.ssh_hosts
        pins = self.pinned_host_keys
        if len(pins) < len(self.ssh_host_keys):
            yield "sshHostKeys: a host is listed twice; pin one key per host"
        ports = {int(m.group(1)) for line in self.ssh_host_keys if (m := re.match(r"\[.+\]:(\d+) ", line))}
        if ports - {self.ssh_port}:
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
        paths = [(index, store.path) for index, store in enumerate(self.stores) if isinstance(store, FileStoreConfig)]
        if len({path for _, path in paths}) < len(paths):
            yield "stores: two file stores have the same path; each needs its own directory"
        for index, path in paths:
            for other, outer in paths:
                if path != outer and validators.within(path, outer):
                    yield (
                        f"stores[{index}].path: {path} is inside stores[{other}].path ({outer}); file stores need "
                        "directories apart (destroying one would remove the other's images)"
                    )


@dataclass(frozen=True)
class SshTarget:
    host: str
    port: int
    user: str
    private_key: SecretStr
    # `TYPE BASE64`, which the host must present; None only when the stack opts out.
    host_key: str | None


@dataclass(frozen=True)
class ApiHost:
    ssh: SshTarget
    # Glance's API on this host itself, which its readiness gate checks.
    api_url: str
    # How long the gate waits once the host answers, for the load balancer to see it.
    settle_seconds: int = 0


@dataclass(frozen=True)
class PgHba:
    path: str
    database: str
    user: str
    address: str
    method: str
    unit: str


@dataclass(frozen=True)
class DatabaseSettings:
    engine: DbEngine
    # The hosts as they go into a URL or host:port (the database URL, the providers' endpoints):
    # an IPv6 address in brackets.
    host: str
    port: int
    name: str
    user: str
    password: SecretStr | None
    admin_host: str
    admin_port: int
    admin_user: str
    admin_password: SecretStr
    # The database host over SSH: the MySQL account and the pg_hba line are made there.
    ssh: SshTarget
    pg_hba: PgHba | None


@dataclass(frozen=True)
class KeystoneSettings:
    public_uri: str
    auth_url: str
    api_url: str
    admin_user: str
    admin_password: SecretStr
    admin_project: str
    domain_id: str
    domain_name: str
    region: str
    service_project: str
    glance_user: str
    glance_password: SecretStr | None


@dataclass(frozen=True)
class LimitsSettings:
    user: str
    password: SecretStr | None
    registered: Mapping[str, int]


@dataclass(frozen=True)
class Endpoints:
    public: str
    internal: str
    admin: str


@dataclass(frozen=True)
class GlanceSettings:
    endpoints: Endpoints
    stores: tuple[Store, ...]
    default_store: str
    # Zed with declared stores: enabled_backends and a section per store. Otherwise the
    # single-store form of the guides ([glance_store] stores/default_store).
    multi_store: bool
    memcached_servers: tuple[str, ...]
    debug: bool
    extra_options: Mapping[str, Mapping[str, str]]
    # apiSecretOptions: rendered with the credentials, never into the plain file.
    secret_options: Mapping[str, Mapping[str, SecretStr]]


@dataclass(frozen=True)
class ImageSettings:
    name: str
    # A URL the machine running Pulumi downloads, or a local file; exactly one is set.
    source_url: str | None
    local_path: str | None
    visibility: Visibility = "public"
    # What the file must hash to before it is uploaded (always set for a URL).
    checksum: Checksum | None = None


@dataclass(frozen=True)
class Settings:
    profile: Profile
    # The first API host: db_sync runs there, and the database host is reached like it.
    node: SshTarget
    api_hosts: tuple[ApiHost, ...]
    database: DatabaseSettings
    keystone: KeystoneSettings
    limits: LimitsSettings | None
    glance: GlanceSettings
    image: ImageSettings
    protect_data: bool


def load_settings(raw: Mapping[str, str], secret_keys: frozenset[str] = frozenset()) -> Settings:
    """Parse `glance:*` config values (key without namespace -> raw string).

    Every problem is collected and reported at once, each naming its key (list items with
    their index and field) and what is allowed; secret values are never shown."""
    errors = [
        f"{NAMESPACE}:{key} holds a credential: set it with `pulumi config set --secret {NAMESPACE}:{key}`"
        for key in sorted(SECRET_KEYS & raw.keys() - secret_keys)
        if not _is_unset(raw[key], _unset_markers(key))
    ]
    decoded = {key: _decode(key, value) for key, value in raw.items()}
    if "stores" not in secret_keys:
        errors.extend(_plaintext_store_secrets(decoded.get("stores")))
    # No control character in any string, secrets and store options included (a PEM key has lines).
    controls = [
        f"{NAMESPACE}:{problem}"
        for key, value in decoded.items()
        for problem in validators.control_characters(key, value, allow_newline=frozenset({"sshPrivateKey"}))
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
    return _resolve(config)


def _decode(key: str, value: Any) -> Any:
    """Pulumi passes structured values (lists, objects) as JSON text; a string key's value is
    text, whatever it looks like (a password "[1]")."""
    field = _field(key)
    if field is not None and not _is_list(field.annotation):
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


def _location(loc: tuple[Any, ...]) -> list[str]:
    """Pydantic's error location as the stack file spells it: stores[1].keyring, not
    stores.1.rbd.keyring (the union tag it inserts after the index is left out)."""
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
        elif index >= 2 and loc[0] == "stores" and isinstance(loc[index - 1], int) and part in STORE_TYPES:
            continue
        else:
            parts.append(str(part))
    return parts


def _describe(error: Any) -> list[str]:
    """`glance:KEY message` lines of one pydantic error (a model-level error may hold several)."""
    location = _location(tuple(error["loc"]))
    message: str = error["msg"]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        location.append("type")
        message = f"must be one of: {', '.join(STORE_TYPES)}"
    elif error["type"] == "extra_forbidden":
        message = "is not a known key (see the README's stack config reference)"
    elif error["type"] == "missing":
        secret = location and location[0] in SECRET_KEYS
        message = "is required" + (" (set it with `pulumi config set --secret`)" if secret else "")
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
        if location and location[-1].startswith("stores["):
            # An item's own rule names the item's keys: "keyring: must be ..."
            keys, _, message = message.partition(": ")
            location[-1] += f".{keys}"
    if not location:
        # The cross-key rules: one `key: message` a line.
        return [f"{NAMESPACE}:{key} {text}" for key, _, text in (line.partition(": ") for line in message.splitlines())]
    return [f"{NAMESPACE}:{'.'.join(location)} {message}"]


def _resolve(config: StackConfig) -> Settings:
    profile = PROFILES[config.profile]
    node = _ssh_target(config, config.hosts[0])
    hosts = config.hosts
    # One host: the endpoints default to it. Several: to the load balancer (publicUrl).
    # An IPv6 controller goes into URLs in brackets.
    controller = validators.url_host(config.controller_host)
    glance_url = config.public_url if len(hosts) > 1 and config.public_url else f"http://{controller}:{GLANCE_PORT}"
    internal_url = config.internal_url or glance_url
    keystone_url = config.keystone_url or f"http://{controller}:5000"
    # Without /v3 (Glance's auth_url); the providers and the system-role step use api_url, with it.
    auth_url = config.keystone_auth_url or f"http://{controller}:{profile.release.keystone_auth_port}"
    api_url = config.keystone_api_url or f"{auth_url}/v3"
    return Settings(
        profile=profile,
        node=node,
        api_hosts=tuple(
            # Each host's readiness gate checks the host itself, not the load balancer.
            ApiHost(_ssh_target(config, host), internal_url)
            if len(hosts) == 1
            else ApiHost(
                _ssh_target(config, host),
                f"http://{validators.url_host(host)}:{GLANCE_PORT}",
                config.load_balancer_check_seconds,
            )
            for host in hosts
        ),
        database=_database(config, profile),
        keystone=KeystoneSettings(
            public_uri=keystone_url,
            auth_url=auth_url,
            api_url=api_url,
            admin_user=config.keystone_admin_user,
            admin_password=config.keystone_admin_password,
            admin_project=config.keystone_admin_project,
            domain_id=config.domain_id,
            domain_name=config.domain_name,
            region=config.region,
            service_project=config.service_project,
            glance_user=config.glance_user,
            glance_password=config.glance_password,
        ),
        limits=LimitsSettings(
            config.limits_user,
            config.limits_password,
            {resource: getattr(config, resource) for resource in LIMIT_RESOURCES},
        )
        if config.keystone_limits
        else None,
        glance=GlanceSettings(
            endpoints=Endpoints(
                public=config.public_url or glance_url,
                internal=internal_url,
                admin=config.admin_url or glance_url,
            ),
            **_stores(config, profile, auth_url=f"{auth_url}/v3", api_url=api_url),
            memcached_servers=tuple(config.memcached_servers),
            debug=config.debug,
            extra_options=_option_sections(config.api_options),
            secret_options={
                section: {option: SecretStr(value) for option, value in options.items()}
                for section, options in _option_sections(config.api_secret_options).items()
            },
        ),
        image=_image(config),
        protect_data=config.protect_data,
    )


def _database(config: StackConfig, profile: Profile) -> DatabaseSettings:
    engine = config.engine
    default_port = 5432 if engine == "postgresql" else 3306
    host = config.db_host or config.controller_host
    pg_hba = None
    if engine == "postgresql":
        pg_hba = PgHba(
            path=config.pg_hba_path or profile.pg_hba_path,
            database=config.db_name,
            user=config.db_user,
            address=config.pg_hba_address or _default_hba_address(config.controller_host),
            method=config.pg_hba_method,
            unit=profile.postgresql_unit,
        )
    return DatabaseSettings(
        engine=engine,
        host=validators.url_host(host),
        port=config.db_port or default_port,
        name=config.db_name,
        user=config.db_user,
        password=config.db_password,
        admin_host=validators.url_host(config.db_admin_host or host),
        admin_port=config.db_admin_port or config.db_port or default_port,
        admin_user=config.database_admin_user,
        admin_password=config.db_admin_password,
        ssh=_ssh_target(config, config.database_ssh_host),
        pg_hba=pg_hba,
    )


def _image(config: StackConfig) -> ImageSettings:
    source = config.cirros_source
    local = source.startswith("/")
    given = config.cirros_checksum or (f"md5:{GUIDE_CIRROS_MD5}" if source == GUIDE_CIRROS_URL else None)
    return ImageSettings(
        name=config.image_name,
        source_url=None if local else source,
        local_path=source if local else None,
        visibility=config.image_visibility,
        checksum=validators.checksum(given) if given else None,
    )


def _ssh_target(config: StackConfig, host: str) -> SshTarget:
    return SshTarget(
        host=host,
        port=config.ssh_port,
        user=config.ssh_user,
        private_key=config.ssh_private_key,
        host_key=None if config.insecure_ignore_host_keys else config.pinned_host_keys[host],
    )


def _default_hba_address(controller: str) -> str:
    """pg_hba needs a CIDR for an address; a host name is matched by reverse lookup."""
    try:
        address = ipaddress.ip_address(controller)
    except ValueError:
        return controller
    return f"{address}/{address.max_prefixlen}"


def _stores(config: StackConfig, profile: Profile, auth_url: str, api_url: str) -> dict[str, Any]:
    if config.stores is None:
        # The guides' single file store, configured as they configure it.
        path = config.image_store_path or DEFAULT_STORE_PATH
        return {"stores": (FileStore("file", path),), "default_store": "file", "multi_store": False}
    defaults = StoreDefaults(
        auth_url=auth_url,
        api_url=api_url,
        account=f"{config.service_project}:{config.glance_user}",
        region=config.region,
    )
    return {
        "stores": tuple(resolve(item, defaults) for item in config.stores),
        "default_store": config.default_store or config.stores[0].id,
        "multi_store": profile.release.multi_store,
    }


def _option_sections(lines: list[str]) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    for line in lines:
        name, option = line.split("=", 1)[0].split(".", 1)
        sections.setdefault(name, {})[option] = line.split("=", 1)[1]
    return sections
