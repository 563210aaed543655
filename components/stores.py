"""Image stores as data: the `glance:stores` config items, validated, and what each needs.

Each store type is one frozen record that knows its glance_store options, the files it
needs on the API host and their secrets; rendering.py places the options into the
single-store form ([glance_store], Liberty) or the multi-store form (one section per
store id, Zed), as the release decides. The config models below only parse and check
one item; the rules that span items (unique ids, the default, the release's types) are
in stack_input.py, where the whole stack config is known.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.alias_generators import to_camel

from components import validators
from components.validators import DataDirectory, HttpUrl, KeystoneV3Url, Name

StoreType = Literal["file", "swift", "rbd", "s3", "cinder"]
STORE_TYPES: tuple[StoreType, ...] = ("file", "swift", "rbd", "s3", "cinder")
# Option names a store item may set that hold credentials (camelCase, as in the stack file).
SECRET_OPTIONS = frozenset({"key", "keyring", "secretKey"})
# Section names glance-api.conf already uses, or that oslo.config and Glance reserve: a
# store id becomes a section name, so it cannot be one of these.
RESERVED_IDS = frozenset(
    {"DEFAULT", "database", "glance_store", "keystone_authtoken", "oslo_limit", "paste_deploy", "task", "http"}
)
RESERVED_PREFIX = "os_glance_"
# Multi-store's own file stores for staged uploads and import tasks.
STAGING_DIR = "/var/lib/glance/staging"
TASKS_DIR = "/var/lib/glance/tasks_work_dir"
# Not the package's own glance-swift.conf: a conffile we would clobber, and delete on destroy.
SWIFT_REFERENCES = "/etc/glance/glance-pulumi-swift.conf"
CEPH_KEY = re.compile(r"^[A-Za-z0-9+/]{38,}={0,2}$")


def _store_id(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", value):
        raise ValueError("must be letters, digits, '-' or '_' (it names a config section and the API's store)")
    if value in RESERVED_IDS or value.startswith(RESERVED_PREFIX):
        raise ValueError(f"{value!r} is reserved by Glance's config; choose another id")
    return value


def _swift_account(value: str) -> str:
    project, colon, user = value.partition(":")
    if not (project and colon and user) or value != value.strip():
        raise ValueError("must be project:user, e.g. service:glance")
    return value


def _non_empty_secret(value: SecretStr) -> SecretStr:
    if not value.get_secret_value():
        raise ValueError("must not be empty")
    return value


StoreId = Annotated[str, AfterValidator(_store_id)]
CephConf = Annotated[str, AfterValidator(validators.ceph_conf)]
CephxId = Annotated[str, AfterValidator(validators.cephx_id)]
CephMonitor = Annotated[str, AfterValidator(validators.ceph_monitor)]
SecretKey = Annotated[SecretStr, AfterValidator(_non_empty_secret)]
Description = Annotated[str, Field(max_length=255)]


class _StoreItem(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True, strict=False)

    id: StoreId
    # Shown by GET /v2/info/stores (multi-store form only).
    description: Description | None = None


class FileStoreConfig(_StoreItem):
    type: Literal["file"]
    # Not a system directory, nor Glance's own; the stack checks that file stores do not nest.
    path: DataDirectory
    # The operator vouches that every API host mounts this directory (e.g. NFS): only then
    # may several apiHosts use it.
    shared: bool = False


class SwiftStoreConfig(_StoreItem):
    type: Literal["swift"]
    container: Annotated[str, AfterValidator(validators.simple_name("glance"))] = "glance"
    # The program creates the container (as the store's account) before Glance starts.
    create_container: bool = False
    create_container_on_put: bool = False
    # Images go to each project's own account, with the user's token: no account here.
    multi_tenant: bool = False
    # Keystone v3, given with or without /v3.
    auth_url: KeystoneV3Url | None = None
    user: Annotated[str, AfterValidator(_swift_account)] | None = None
    key: SecretKey | None = None
    region: Name | None = None
    endpoint_type: Literal["publicURL", "internalURL", "adminURL"] | None = None

    @model_validator(mode="after")
    def _account(self) -> SwiftStoreConfig:
        if self.multi_tenant:
            account = {"authUrl": self.auth_url, "user": self.user, "key": self.key}
            single = [name for name, value in account.items() if value]
            if self.create_container:
                single.append("createContainer")
            if single:
                raise ValueError(
                    f"{', '.join(single)}: not used by a multiTenant store (each project's own account and "
                    "container, created on put); drop them or set multiTenant false"
                )
        return self


class RbdStoreConfig(_StoreItem):
    type: Literal["rbd"]
    pool: Annotated[str, AfterValidator(validators.simple_name("images"))] = "images"
    # The cephx id: part of the keyring's file name, so no '/' or '..'.
    user: CephxId = "glance"
    ceph_conf: CephConf = "/etc/ceph/ceph.conf"
    mon_hosts: Annotated[list[CephMonitor], Field(min_length=1)]
    # The cephx key of client.<user>, as `ceph auth get-key client.glance` prints it.
    keyring: SecretStr

    @model_validator(mode="after")
    def _key_format(self) -> RbdStoreConfig:
        if not CEPH_KEY.fullmatch(self.keyring.get_secret_value()):
            raise ValueError("keyring: must be the cephx key itself (base64), as `ceph auth get-key` prints it")
        return self


class S3StoreConfig(_StoreItem):
    type: Literal["s3"]
    endpoint: HttpUrl
    bucket: Annotated[str, AfterValidator(validators.simple_name("glance"))]
    access_key: Annotated[str, AfterValidator(validators.name(128))]
    secret_key: SecretKey
    create_bucket_on_put: bool = False
    bucket_url_format: Literal["auto", "path", "virtual"] | None = None


class CinderStoreConfig(_StoreItem):
    type: Literal["cinder"]
    volume_type: Name
    catalog_info: str | None = None
    # A URL whose path may hold %(tenant)s.
    endpoint_template: HttpUrl | None = None
    region: Name | None = None

    @model_validator(mode="after")
    def _one_way_to_cinder(self) -> CinderStoreConfig:
        if self.catalog_info and self.endpoint_template:
            raise ValueError("catalogInfo, endpointTemplate: give one way to find Cinder, not both")
        if self.catalog_info is not None and len(self.catalog_info.split(":")) != 3:
            raise ValueError("catalogInfo: must be service_type:service_name:interface, e.g. volumev3::publicURL")
        return self


StoreConfig = Annotated[
    FileStoreConfig | SwiftStoreConfig | RbdStoreConfig | S3StoreConfig | CinderStoreConfig,
    Field(discriminator="type"),
]


# ---- resolved records ------------------------------------------------------------------


@dataclass(frozen=True)
class FileStore:
    id: str
    path: str
    description: str | None = None
    type: StoreType = field(default="file", init=False)

    def options(self) -> dict[str, str]:
        return {"filesystem_store_datadir": self.path + "/"}

    def secret_options(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class SwiftStore:
    id: str
    container: str
    create_container: bool
    create_container_on_put: bool
    multi_tenant: bool
    # Keystone v3 URL, project:user and key of the account images go to (single tenant).
    auth_url: str
    # The same Keystone as the machine running Pulumi reaches it (to create the container).
    api_url: str
    user: str
    # None: the glance user's own password, known only at deploy time.
    key: SecretStr | None
    region: str | None
    endpoint_type: str | None
    description: str | None = None
    type: StoreType = field(default="swift", init=False)

    @property
    def project_name(self) -> str:
        return self.user.split(":", 1)[0]

    @property
    def user_name(self) -> str:
        return self.user.split(":", 1)[1]

    def options(self) -> dict[str, str]:
        options = {
            "swift_store_container": self.container,
            "swift_store_create_container_on_put": str(self.create_container_on_put),
        }
        if self.multi_tenant:
            options["swift_store_multi_tenant"] = "True"
        else:
            # The account's credentials are in the references file, a secret of its own.
            options["swift_store_config_file"] = SWIFT_REFERENCES
            options["default_swift_reference"] = self.id
        if self.region:
            options["swift_store_region"] = self.region
        if self.endpoint_type:
            options["swift_store_endpoint_type"] = self.endpoint_type
        return options

    def secret_options(self) -> dict[str, str]:
        return {}

    def reference(self, glance_password: str, domain_by_name: bool, domain: tuple[str, str]) -> dict[str, str]:
        """This store's section of the references file (glance_store reads it with configparser)."""
        domain_id, domain_name = domain
        domain_options = (
            {"user_domain_name": domain_name, "project_domain_name": domain_name}
            if domain_by_name
            else {"user_domain_id": domain_id, "project_domain_id": domain_id}
        )
        return {
            "auth_version": "3",
            "auth_address": self.auth_url,
            "user": self.user,
            "key": glance_password if self.key is None else self.key.get_secret_value(),
            **domain_options,
        }


@dataclass(frozen=True)
class RbdStore:
    id: str
    pool: str
    user: str
    # The stack's cephConf: where versions before Glance's own directory wrote the store's
    # ceph.conf (and the keyring beside it), which the config steps' old names recall.
    ceph_conf: str
    mon_hosts: tuple[str, ...]
    keyring: SecretStr
    description: str | None = None
    type: StoreType = field(default="rbd", init=False)

    @property
    def directory(self) -> str:
        """Glance's own Ceph client files, one pair per store named by the store id (letters,
        digits, '-', '_'): never a shared /etc/ceph/ceph.conf or keyring that other Ceph
        clients read, so the stack owns them outright and destroy removes only them."""
        return "/etc/ceph/glance-pulumi"

    @property
    def conf_path(self) -> str:
        return f"{self.directory}/{self.id}.conf"

    @property
    def keyring_path(self) -> str:
        return f"{self.directory}/{self.id}.keyring"

    @property
    def legacy_paths(self) -> tuple[str, str]:
        """ceph.conf and keyring where versions before `directory` wrote them."""
        return self.ceph_conf, f"{posixpath.dirname(self.ceph_conf)}/ceph.client.{self.user}.keyring"

    def options(self) -> dict[str, str]:
        return {"rbd_store_pool": self.pool, "rbd_store_user": self.user, "rbd_store_ceph_conf": self.conf_path}

    def secret_options(self) -> dict[str, str]:
        return {}

    def ceph_conf_text(self) -> str:
        return (
            "# Managed by glance-pulumi: edit the stack config, not this file.\n"
            f"[global]\nmon_host = {','.join(self.mon_hosts)}\n\n"
            f"[client.{self.user}]\nkeyring = {self.keyring_path}\n"
        )

    def keyring_text(self) -> str:
        return f"[client.{self.user}]\n\tkey = {self.keyring.get_secret_value()}\n"


@dataclass(frozen=True)
class S3Store:
    id: str
    endpoint: str
    bucket: str
    access_key: str
    secret_key: SecretStr
    create_bucket_on_put: bool
    bucket_url_format: str | None
    description: str | None = None
    type: StoreType = field(default="s3", init=False)

    def options(self) -> dict[str, str]:
        options = {
            "s3_store_host": self.endpoint,
            "s3_store_access_key": self.access_key,
            "s3_store_bucket": self.bucket,
            "s3_store_create_bucket_on_put": str(self.create_bucket_on_put),
        }
        if self.bucket_url_format:
            options["s3_store_bucket_url_format"] = self.bucket_url_format
        return options

    def secret_options(self) -> dict[str, str]:
        return {"s3_store_secret_key": self.secret_key.get_secret_value()}


@dataclass(frozen=True)
class CinderStore:
    id: str
    volume_type: str
    catalog_info: str | None
    endpoint_template: str | None
    region: str | None
    description: str | None = None
    type: StoreType = field(default="cinder", init=False)

    def options(self) -> dict[str, str]:
        options = {"cinder_volume_type": self.volume_type}
        if self.catalog_info:
            options["cinder_catalog_info"] = self.catalog_info
        if self.endpoint_template:
            options["cinder_endpoint_template"] = self.endpoint_template
        if self.region:
            options["cinder_os_region_name"] = self.region
        return options

    def secret_options(self) -> dict[str, str]:
        return {}


Store = FileStore | SwiftStore | RbdStore | S3Store | CinderStore


@dataclass(frozen=True)
class StoreDefaults:
    """What a store item leaves unset falls back to the stack's Keystone settings."""

    auth_url: str
    api_url: str
    account: str
    region: str


def resolve(
    item: FileStoreConfig | SwiftStoreConfig | RbdStoreConfig | S3StoreConfig | CinderStoreConfig,
    defaults: StoreDefaults,
) -> Store:
    match item:
        case FileStoreConfig():
            return FileStore(item.id, item.path, item.description)
        case SwiftStoreConfig():
            return SwiftStore(
                id=item.id,
                container=item.container,
                create_container=item.create_container,
                create_container_on_put=item.create_container_on_put,
                multi_tenant=item.multi_tenant,
                auth_url=item.auth_url or defaults.auth_url,
                api_url=item.auth_url or defaults.api_url,
                user=item.user or defaults.account,
                key=item.key,
                region=item.region or defaults.region,
                endpoint_type=item.endpoint_type,
                description=item.description,
            )
        case RbdStoreConfig():
            return RbdStore(
                item.id, item.pool, item.user, item.ceph_conf, tuple(item.mon_hosts), item.keyring, item.description
            )
        case S3StoreConfig():
            return S3Store(
                item.id,
                item.endpoint,
                item.bucket,
                item.access_key,
                item.secret_key,
                item.create_bucket_on_put,
                item.bucket_url_format,
                item.description,
            )
        case CinderStoreConfig():
            return CinderStore(
                item.id, item.volume_type, item.catalog_info, item.endpoint_template, item.region, item.description
            )
