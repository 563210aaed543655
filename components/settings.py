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
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args
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
ENVIRONMENTS: tuple[str, ...] = get_args(Environment)
LIMIT_RESOURCES = ("image_size_total", "image_stage_total", "image_count_total", "image_count_uploading")


class ConfigError(RunError, ValueError):
    """The stack config is invalid; the message names each key and what it allows.

    A RunError, so the engine shows the message alone, without a Python traceback.
    """


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host, e.g. http://controller:9292")
    return value.rstrip("/")


def _absolute_path(value: str) -> str:
    if not posixpath.isabs(value):
        raise ValueError("must be an absolute path, e.g. /var/lib/glance/images")
    return posixpath.normpath(value)


def _cirros_source(value: str) -> str:
    if value.startswith("/"):
        return posixpath.normpath(value)
    try:
        return _http_url(value)
    except ValueError:
        raise ValueError("must be an http(s) URL or an absolute path to a local image file") from None


def _host_name(value: str) -> str:
    if not value or any(c.isspace() or c in "/@:" for c in value):
        raise ValueError("must be a host name or IP address, without scheme, port or path")
    return value


def _pg_hba_address(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return _host_name(value)
    if "/" not in value:
        raise ValueError("an IP address needs a prefix length here, e.g. 10.0.0.11/32")
    return value


def _option_name(value: str) -> tuple[str, str]:
    """section.option of a section.option=value item, refusing the options the program owns."""
    section, dot, rest = value.partition(".")
    option, equals, _ = rest.partition("=")
    if not (section and dot and option and equals) or any(c.isspace() or not c.isprintable() for c in section + option):
        raise ValueError("items must look like section.option=value, e.g. DEFAULT.workers=2")
    owned = OWNED_OPTIONS.get(section, frozenset())
    if owned is None or option in owned:
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
    if "\n" in value or "\r" in value:
        raise ValueError("items cannot span lines")
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
    _host_name(bracketed.group(1) if bracketed else host)
    try:
        blob = base64.b64decode(key, validate=True)
    except binascii.Error:
        raise ValueError(f"the key of {host} is not base64; copy the line {how}") from None
    # The key's own encoding starts with its type: a key pasted under the wrong type is caught here.
    length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + length] != kind.encode():
        raise ValueError(f"the key of {host} is not an {kind} key; copy the line {how}")
    return f"{host} {kind} {key}"


HttpUrl = Annotated[str, AfterValidator(_http_url)]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]
HostName = Annotated[str, AfterValidator(_host_name)]
Port = Annotated[int, Field(ge=1, le=65535)]
Limit = Annotated[int, Field(ge=0)]
OptionLine = Annotated[str, AfterValidator(_option_line)]
SecretOptionLine = Annotated[str, AfterValidator(_secret_option_line)]
KnownHost = Annotated[str, AfterValidator(_known_host)]
# Pulumi's project config schema makes every key without a default required, so optional
# keys whose default is derived from other keys declare "" / 0 / [] there: that means unset.
UNSET_MARKERS: tuple[object, ...] = ("", 0, "0", [], "[]")


class StackConfig(BaseModel):
    """The `glance:*` keys a stack file may set; the README's reference mirrors this."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True, strict=False)

    @model_validator(mode="before")
    @classmethod
    def _drop_unset_markers(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        derived = {field.alias for field in cls.model_fields.values() if field.default is None}
        return {key: value for key, value in values.items() if not (key in derived and value in UNSET_MARKERS)}

    profile: ProfileName
    controller_host: HostName = "controller"
    api_hosts: list[HostName] | None = None
    ssh_port: Port = 22
    ssh_user: str = "root"
    ssh_private_key: SecretStr
    ssh_host_keys: list[KnownHost] = Field(default_factory=list)
    insecure_ignore_host_keys: bool = False
    environment: Environment | None = None

    db_engine: DbEngine | None = None
    db_host: HostName | None = None
    db_port: Port | None = None
    db_name: str = "glance"
    db_user: str = "glance"
    db_password: SecretStr | None = None
    db_admin_host: HostName | None = None
    db_admin_port: Port | None = None
    db_admin_user: str | None = None
    db_admin_password: SecretStr
    db_ssh_host: HostName | None = None
    pg_hba_path: AbsolutePath | None = None
    pg_hba_address: Annotated[str, AfterValidator(_pg_hba_address)] | None = None
    pg_hba_method: Literal["md5", "scram-sha-256"] = "md5"

    keystone_url: HttpUrl | None = None
    keystone_auth_url: HttpUrl | None = None
    keystone_api_url: HttpUrl | None = None
    keystone_admin_user: str = "admin"
    keystone_admin_password: SecretStr
    keystone_admin_project: str = "admin"
    domain_id: str = "default"
    domain_name: str = "Default"
    region: str = "RegionOne"
    service_project: str = "service"
    glance_user: str = "glance"
    glance_password: SecretStr | None = None

    public_url: HttpUrl | None = None
    load_balancer_check_seconds: Annotated[int, Field(ge=0, le=300)] = 3
    internal_url: HttpUrl | None = None
    admin_url: HttpUrl | None = None
    image_store_path: AbsolutePath | None = None
    stores: list[StoreConfig] | None = None
    default_store: str | None = None
    memcached_servers: list[str] = Field(default_factory=list)
    debug: bool = False
    api_options: list[OptionLine] = Field(default_factory=list)
    api_secret_options: list[SecretOptionLine] = Field(default_factory=list)

    keystone_limits: bool = False
    limits_user: str = "service-oslo"
    limits_password: SecretStr | None = None
    image_size_total: Limit = 1000
    image_stage_total: Limit = 1000
    image_count_total: Limit = 100
    image_count_uploading: Limit = 10

    image_name: str = "cirros"
    cirros_source: Annotated[str, AfterValidator(_cirros_source)] = GUIDE_CIRROS_URL
    protect_data: bool = True

    @property
    def hosts(self) -> list[str]:
        """The API hosts: apiHosts, or else the controller alone."""
        return self.api_hosts or [self.controller_host]

    @model_validator(mode="after")
    def _consistent(self) -> StackConfig:
        profile = PROFILES[self.profile]
        self._check_stores(profile)
        self._check_api_hosts()
        self._check_host_keys()
        if self.keystone_limits and not profile.release.supports_keystone_limits:
            raise ValueError(
                f"keystoneLimits: Keystone unified limits need Glance Zed or later; "
                f"profile {self.profile} deploys {profile.release.name}"
            )
        engine = self.db_engine or profile.default_db_engine
        pg_only = {"pgHbaPath": self.pg_hba_path, "pgHbaAddress": self.pg_hba_address}
        misplaced = [key for key, value in pg_only.items() if value is not None]
        if engine != "postgresql" and misplaced:
            raise ValueError(f"{', '.join(misplaced)}: only used with dbEngine postgresql, not {engine}")
        return self

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

    def _check_host_keys(self) -> None:
        """Every SSH host has one pinned key (unless the stack opts out), and no key pins a stranger."""
        hosts = self.ssh_hosts
        pins = self.pinned_host_keys
        if len(pins) < len(self.ssh_host_keys):
            raise ValueError("sshHostKeys: a host is listed twice; pin one key per host")
        ports = {int(m.group(1)) for line in self.ssh_host_keys if (m := re.match(r"\[.+\]:(\d+) ", line))}
        if ports - {self.ssh_port}:
            raise ValueError(f"sshHostKeys: a [host]:port line names another port than sshPort ({self.ssh_port})")
        strangers = sorted(set(pins) - set(hosts))
        if strangers:
            raise ValueError(
                f"sshHostKeys: {', '.join(strangers)} is not a host this stack reaches over SSH "
                f"({', '.join(hosts)}); a typo would leave the real host unpinned"
            )
        if self.insecure_ignore_host_keys:
            return
        missing = [host for host in hosts if host not in pins]
        if missing:
            port = "" if self.ssh_port == 22 else f"-p {self.ssh_port} "
            raise ValueError(
                f"sshHostKeys: no pinned SSH host key for {', '.join(missing)}; every host the program logs in to "
                "must prove who it is before it receives passwords. Get each key, compare its fingerprint "
                "(`ssh-keygen -lf`) with the host's own console, then add the line: "
                f"`ssh-keyscan {port}-t ed25519 {missing[0]}` prints it"
            )

    def _check_api_hosts(self) -> None:
        """Several API hosts serve one catalog: every store must be one they all reach."""
        hosts = self.hosts
        if len(hosts) == 1:
            return
        if len(set(hosts)) < len(hosts):
            raise ValueError("apiHosts: a host is listed twice; list each API host once")
        if self.stores is None:
            raise ValueError(
                f"apiHosts: {len(hosts)} hosts would each keep images in their own file store (imageStorePath); "
                "declare stores with a shared default (swift, rbd, s3 or cinder), or a file store with "
                "shared: true on a mount every host has"
            )
        local = [f"stores[{i}] ({s.id})" for i, s in enumerate(self.stores) if s.type == "file" and not s.shared]
        if local:
            raise ValueError(
                f"apiHosts: {len(hosts)} hosts, but {', '.join(local)} is a file store on each host's own disk: "
                "an image stored through one host could not be read through another; set shared: true if every "
                "host mounts the same directory (e.g. NFS), or use swift, rbd, s3 or cinder"
            )
        if self.public_url is None:
            raise ValueError(
                f"publicUrl: required with {len(hosts)} apiHosts: the load balancer's URL in front of them "
                "(internalUrl and adminUrl default to it)"
            )

    def _check_stores(self, profile: Profile) -> None:
        """The rules that span store items (each item checks its own options)."""
        if self.stores is None:
            if self.default_store is not None:
                raise ValueError("defaultStore: only used with stores; declare the stores first")
            return
        if self.image_store_path is not None:
            raise ValueError("imageStorePath: not used with stores; give the file store's path as its `path`")
        if not self.stores:
            raise ValueError("stores: declare at least one store, or leave stores unset for the file store")
        ids = [store.id for store in self.stores]
        doubled = sorted({store_id for store_id in ids if ids.count(store_id) > 1})
        if doubled:
            raise ValueError(f"stores: id {', '.join(map(repr, doubled))} is used more than once; ids must be unique")
        release = profile.release
        for index, store in enumerate(self.stores):
            if store.type not in release.store_types:
                supported = ", ".join(t for t in STORE_TYPES if t in release.store_types)
                raise ValueError(
                    f"stores[{index}].type: Glance {release.name} (profile {profile.name}) has no {store.type} "
                    f"store; supported: {supported}"
                )
        types = [store.type for store in self.stores]
        if not release.multi_store and len(set(types)) < len(types):
            twice = sorted({t for t in types if types.count(t) > 1})
            raise ValueError(
                f"stores: Glance {release.name} configures one store per type (no multi-store); "
                f"{', '.join(twice)} is declared more than once"
            )
        if self.default_store is None and len(self.stores) > 1:
            raise ValueError(f"defaultStore: required with several stores; one of: {', '.join(ids)}")
        if self.default_store is not None and self.default_store not in ids:
            raise ValueError(f"defaultStore: {self.default_store!r} is not a store id; one of: {', '.join(ids)}")
        file_paths = [store.path for store in self.stores if isinstance(store, FileStoreConfig)]
        if len(set(file_paths)) < len(file_paths):
            raise ValueError("stores: two file stores have the same path; each needs its own directory")


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
    source_url: str | None
    local_path: str | None


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
    """Parse `glance:*` config values (key without namespace -> raw string)."""
    errors = [
        f"{NAMESPACE}:{key} holds a credential: set it with `pulumi config set --secret {NAMESPACE}:{key}`"
        for key in sorted(SECRET_KEYS & raw.keys() - secret_keys)
        if raw[key] not in UNSET_MARKERS
    ]
    if "stores" not in secret_keys:
        errors.extend(_plaintext_store_secrets(_decode(raw.get("stores"))))
    try:
        config = StackConfig.model_validate({key: _decode(value) for key, value in raw.items()})
    except ValidationError as exc:
        errors.extend(_describe(error) for error in exc.errors())
    if errors:
        raise ConfigError("invalid stack config:\n  " + "\n  ".join(errors))
    return _resolve(config)


def _decode(value: Any) -> Any:
    """Pulumi passes structured values (lists, objects) as JSON text."""
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


def _describe(error: Any) -> str:
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
        key, _, message = message.partition(": ")
        location = [key]
    return f"{NAMESPACE}:{'.'.join(location)} {message}"


def _resolve(config: StackConfig) -> Settings:
    profile = PROFILES[config.profile]
    controller = config.controller_host
    node = _ssh_target(config, config.hosts[0])
    hosts = config.hosts
    # One host: the endpoints default to it. Several: to the load balancer (publicUrl).
    glance_url = config.public_url if len(hosts) > 1 and config.public_url else f"http://{controller}:{GLANCE_PORT}"
    internal_url = config.internal_url or glance_url
    keystone_url = config.keystone_url or f"http://{controller}:5000"
    auth_url = config.keystone_auth_url or f"http://{controller}:{profile.release.keystone_auth_port}"
    return Settings(
        profile=profile,
        node=node,
        api_hosts=tuple(
            # Each host's readiness gate checks the host itself, not the load balancer.
            ApiHost(_ssh_target(config, host), internal_url)
            if len(hosts) == 1
            else ApiHost(_ssh_target(config, host), f"http://{host}:{GLANCE_PORT}", config.load_balancer_check_seconds)
            for host in hosts
        ),
        database=_database(config, profile),
        keystone=KeystoneSettings(
            public_uri=keystone_url,
            auth_url=auth_url,
            api_url=config.keystone_api_url or f"{auth_url}/v3",
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
            **_stores(config, profile, auth_url=f"{auth_url}/v3", api_url=config.keystone_api_url or f"{auth_url}/v3"),
            memcached_servers=tuple(config.memcached_servers),
            debug=config.debug,
            extra_options=_option_sections(config.api_options),
            secret_options={
                section: {option: SecretStr(value) for option, value in options.items()}
                for section, options in _option_sections(config.api_secret_options).items()
            },
        ),
        image=ImageSettings(
            name=config.image_name,
            source_url=None if config.cirros_source.startswith("/") else config.cirros_source,
            local_path=config.cirros_source if config.cirros_source.startswith("/") else None,
        ),
        protect_data=config.protect_data,
    )


def _database(config: StackConfig, profile: Profile) -> DatabaseSettings:
    engine = config.db_engine or profile.default_db_engine
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
        host=host,
        port=config.db_port or default_port,
        name=config.db_name,
        user=config.db_user,
        password=config.db_password,
        admin_host=config.db_admin_host or host,
        admin_port=config.db_admin_port or config.db_port or default_port,
        admin_user=config.db_admin_user or ("postgres" if engine == "postgresql" else "root"),
        admin_password=config.db_admin_password,
        ssh=_ssh_target(config, config.database_ssh_host),
        pg_hba=pg_hba,
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
