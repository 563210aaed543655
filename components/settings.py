"""The settings the components use: frozen records, each value derived once from the stack config.

`load_settings` (and `read_settings`, which reads Pulumi's config) validates the `glance:*` keys
with components/stack_input.py, which raises `ConfigError` naming every bad key, and derives
from them the records below: the defaults that follow from other keys (URLs from
controllerHost, ports from the engine, the engine from the profile, ...) are filled in here.
Nothing else in the program reads config.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from components import validators
from components.image_import import METADATA_HOSTS, ImportSettings, WebDownloadFilter
from components.profiles import PROFILES, DbEngine, Profile
from components.stack_input import (
    DB_PORTS,
    DEFAULT_STORE_PATH,
    GLANCE_PORT,
    GUIDE_CIRROS_MD5,
    GUIDE_CIRROS_URL,
    KEYSTONE_PORT,
    NAMESPACE,
    SECRET_KEYS,
    ConfigError,
    StackConfig,
    Visibility,
    parse_config,
    read_config,
)
from components.stores import STAGING_DIR, FileStore, RbdStore, S3Store, Store, StoreDefaults, SwiftStore, resolve
from components.validators import Checksum

# NAMESPACE, SECRET_KEYS and ConfigError are stack_input's, still importable from here as before
# (the stand-in program reads SECRET_KEYS from here).
__all__ = [
    "NAMESPACE",
    "SECRET_KEYS",
    "ApiHost",
    "ConfigError",
    "DatabaseSettings",
    "Endpoints",
    "GlanceSettings",
    "ImageSettings",
    "KeystoneSettings",
    "LimitsSettings",
    "PgHba",
    "Settings",
    "SshTarget",
    "TlsSettings",
    "load_settings",
    "read_settings",
]

LIMIT_RESOURCES = ("image_size_total", "image_stage_total", "image_count_total", "image_count_uploading")


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
    # How long the drain and the undrain wait for the load balancer's checks to see the change.
    settle_seconds: int = 0
    # With several hosts: this host's own URL (worker_self_reference_url), which it records on
    # the images it stages, so that another host proxies their import here.
    self_url: str | None = None


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
    # PEM CA certificates the program's clients trust (None: the system's).
    ca_bundle: str | None = None


@dataclass(frozen=True)
class TlsSettings:
    """TLS as the API hosts serve it and Glance and the program verify it."""

    # What each API host's terminator serves; both None: the hosts serve plain http.
    certificate: str | None = None
    private_key: SecretStr | None = None
    # The CA certificates Glance and the program trust (None: the system's).
    ca_bundle: str | None = None
    # A load balancer ends TLS for the https endpoints: Glance reads its forwarded headers.
    behind_proxy: bool = False

    @property
    def on_hosts(self) -> bool:
        return self.certificate is not None


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
    # Interoperable import; None where the release has none (Liberty).
    image_import: ImportSettings | None = None
    # show_image_direct_url: where the default store is rbd, so Ceph clients clone images in place.
    show_direct_url: bool = False


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
    api_hosts: tuple[ApiHost, ...]
    database: DatabaseSettings
    keystone: KeystoneSettings
    limits: LimitsSettings | None
    glance: GlanceSettings
    image: ImageSettings
    protect_data: bool
    tls: TlsSettings = TlsSettings()
    # glance:packageVersion: Glance's packages at exactly this version; None: as resolved, once.
    package_version: str | None = None


def load_settings(raw: Mapping[str, Any], secret_keys: frozenset[str] = frozenset()) -> Settings:
    """Validate `glance:*` config values (key without namespace -> raw string) and derive the
    settings; `ConfigError` names every bad key at once."""
    return derive(parse_config(raw, secret_keys))


def read_settings() -> Settings:
    """Validate the whole stack config before any resource is registered."""
    return derive(read_config())


def derive(config: StackConfig) -> Settings:
    profile = PROFILES[config.profile]
    pins = config.pinned_host_keys

    def ssh(host: str) -> SshTarget:
        return SshTarget(
            host=host,
            port=config.ssh_port,
            user=config.ssh_user,
            private_key=config.ssh_private_key,
            host_key=None if config.insecure_ignore_host_keys else pins[host],
        )

    # The controller as it goes into URLs: an IPv6 address in brackets.
    controller = validators.url_host(config.controller_host)
    endpoints = Endpoints(*(config.endpoint_urls[key] for key in ("publicUrl", "internalUrl", "adminUrl")))
    keystone = _keystone(config, profile, controller)
    stores = _stores(config, profile, keystone)
    default_store = next(store for store in stores["stores"] if store.id == stores["default_store"])
    return Settings(
        profile=profile,
        api_hosts=_api_hosts(config, endpoints, ssh),
        database=_database(config, profile, ssh(config.database_ssh_host)),
        keystone=keystone,
        limits=LimitsSettings(
            config.limits_user,
            config.limits_password,
            {resource: getattr(config, resource) for resource in LIMIT_RESOURCES},
        )
        if config.keystone_limits
        else None,
        glance=GlanceSettings(
            endpoints=endpoints,
            **stores,
            memcached_servers=tuple(config.memcached_servers),
            debug=config.debug,
            extra_options=_option_sections(config.api_options),
            secret_options={
                section: {option: SecretStr(value) for option, value in options.items()}
                for section, options in _option_sections(
                    line.get_secret_value() for line in config.api_secret_options
                ).items()
            },
            image_import=_image_import(config, profile, stores["stores"]),
            show_direct_url=default_store.type == "rbd",
        ),
        image=_image(config),
        protect_data=config.protect_data,
        tls=TlsSettings(
            certificate=config.tls_certificate,
            private_key=config.tls_private_key,
            ca_bundle=config.tls_ca_bundle,
            behind_proxy=any(url.startswith("https://") for url in config.endpoint_urls.values()),
        ),
        package_version=config.package_version,
    )


def _api_hosts(config: StackConfig, endpoints: Endpoints, ssh: Callable[[str], SshTarget]) -> tuple[ApiHost, ...]:
    """One host: its gate checks the internal endpoint. Several: each host's gate checks the host
    itself, not the load balancer, and each has its own worker URL."""
    hosts = config.hosts
    if len(hosts) == 1:
        return (ApiHost(ssh(hosts[0]), endpoints.internal),)
    # With TLS on the hosts, each host's own API is its terminator.
    scheme = "https" if config.tls_certificate is not None else "http"
    own = [f"{scheme}://{validators.url_host(host)}:{GLANCE_PORT}" for host in hosts]
    # Only releases with import stage images (and know worker_self_reference_url).
    self_urls = (config.worker_urls or own) if PROFILES[config.profile].release.has_import else [None] * len(hosts)
    return tuple(
        ApiHost(ssh(host), url, config.load_balancer_check_seconds, self_url)
        for host, url, self_url in zip(hosts, own, self_urls, strict=True)
    )


def _image_import(config: StackConfig, profile: Profile, stores: tuple[Store, ...]) -> ImportSettings | None:
    if not profile.release.has_import:
        return None
    methods = tuple(config.enabled_import_methods)
    web_download = None
    if "web-download" in methods:
        web_download = WebDownloadFilter(
            schemes=tuple(config.web_download_allowed_schemes),
            ports=tuple(config.web_download_allowed_ports),
            allowed_hosts=tuple(config.web_download_allowed_hosts),
            disallowed_hosts=tuple(
                dict.fromkeys([*config.web_download_disallowed_hosts, *_service_hosts(config, stores)])
            ),
        )
    return ImportSettings(methods, tuple(config.import_plugins), web_download, STAGING_DIR)


def _service_hosts(config: StackConfig, stores: tuple[Store, ...]) -> list[str]:
    """What web-download must never fetch from unless allowed by name: the stack's own hosts and
    the services Glance talks to (an SSRF would reach them from inside), localhost, and the cloud
    metadata addresses."""
    urls = [config.public_url, config.internal_url, config.admin_url, config.keystone_url, config.keystone_auth_url]
    urls += [store.auth_url for store in stores if isinstance(store, SwiftStore)]
    urls += [store.endpoint for store in stores if isinstance(store, S3Store)]
    monitors = [monitor for store in stores if isinstance(store, RbdStore) for monitor in store.mon_hosts]
    hosts = [
        "localhost",
        *METADATA_HOSTS,
        config.controller_host,
        *config.hosts,
        config.database_host,
        *(urlsplit(url).hostname or "" for url in urls if url),
        *(_host_of(server) for server in [*config.memcached_servers, *monitors]),
    ]
    return [host for host in dict.fromkeys(hosts) if host]


def _host_of(address: str) -> str:
    """The host of `host`, `host:port` or `[v6]:port`."""
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def _keystone(config: StackConfig, profile: Profile, controller: str) -> KeystoneSettings:
    # Without /v3 (Glance's auth_url); the providers and the system-role step use api_url, with it.
    auth_url = config.keystone_auth_url or f"http://{controller}:{profile.release.keystone_auth_port}"
    return KeystoneSettings(
        public_uri=config.keystone_url or f"http://{controller}:{KEYSTONE_PORT}",
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
        ca_bundle=config.tls_ca_bundle,
    )


def _database(config: StackConfig, profile: Profile, ssh: SshTarget) -> DatabaseSettings:
    engine = config.engine
    port = config.db_port or DB_PORTS[engine]
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
        host=validators.url_host(config.database_host),
        port=port,
        name=config.db_name,
        user=config.db_user,
        password=config.db_password,
        admin_host=validators.url_host(config.db_admin_host or config.database_host),
        admin_port=config.db_admin_port or port,
        admin_user=config.database_admin_user,
        admin_password=config.db_admin_password,
        ssh=ssh,
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


def _default_hba_address(controller: str) -> str:
    """pg_hba needs a CIDR for an address; a host name is matched by reverse lookup."""
    try:
        address = ipaddress.ip_address(controller)
    except ValueError:
        return controller
    return f"{address}/{address.max_prefixlen}"


def _stores(config: StackConfig, profile: Profile, keystone: KeystoneSettings) -> dict[str, Any]:
    if config.stores is None:
        # The guides' single file store, configured as they configure it.
        path = config.image_store_path or DEFAULT_STORE_PATH
        return {"stores": (FileStore(id="file", path=path),), "default_store": "file", "multi_store": False}
    defaults = StoreDefaults(
        # Keystone v3 as Glance reaches it, and as the machine running Pulumi does.
        auth_url=f"{keystone.auth_url}/v3",
        api_url=keystone.api_url,
        account=f"{config.service_project}:{config.glance_user}",
        region=config.region,
    )
    return {
        "stores": tuple(resolve(item, defaults) for item in config.stores),
        "default_store": config.default_store or config.stores[0].id,
        "multi_store": profile.release.multi_store,
    }


def _option_sections(lines: Iterable[str]) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    for line in lines:
        name, option = line.split("=", 1)[0].split(".", 1)
        sections.setdefault(name, {})[option] = line.split("=", 1)[1]
    return sections
