"""Image stores as data: the `glance:stores` config items, validated, and resolved.

One frozen model per store type is both the stack file's item (parsed and checked here) and
the record the rest of the program reads: `resolve` fills the defaults that come from other
keys (the Swift account from the stack's Keystone settings) with `model_copy`. The glance_store
options each type sets, and its files, are in store_options.py, beside the renderer, which
places them into the single-store form ([glance_store], Liberty) or the multi-store form (one
section per store id, Zed), as the release decides. The rules that span items (unique ids,
the default, the release's types) are in stack_input.py, where the whole stack config is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components import validators
from components.validators import DataDirectory, HttpUrl, KeystoneV3Url, Name, NotEmptySecret

# The store types, in the order messages list them; each model below carries one as its tag.
StoreType = Literal["file", "swift", "rbd", "s3", "cinder"]
STORE_TYPES: tuple[StoreType, ...] = get_args(StoreType)
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
CEPH_KEY = re.compile(r"^[A-Za-z0-9+/]{38,}={0,2}$")


def _store_id(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", value):
        raise ValueError("must be letters, digits, '-' or '_' (it names a config section and the API's store)")
    if value in RESERVED_IDS or value.startswith(RESERVED_PREFIX):
        raise ValueError(f"{value!r} is reserved by Glance's config; choose another id")
    return value


StoreId = Annotated[str, AfterValidator(_store_id)]
CephConf = Annotated[str, AfterValidator(validators.ceph_conf)]
CephxId = Annotated[str, AfterValidator(validators.cephx_id)]
CephMonitor = Annotated[str, AfterValidator(validators.ceph_monitor)]
Description = Annotated[str, Field(max_length=255)]


class _Store(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True, strict=False)

    id: StoreId
    # Shown by GET /v2/info/stores (multi-store form only).
    description: Description | None = None


class FileStore(_Store):
    type: Literal["file"] = "file"
    # Not a system directory, nor Glance's own; the stack checks that file stores do not nest.
    path: DataDirectory
    # The operator vouches that every API host mounts this directory (e.g. NFS): only then
    # may several apiHosts use it.
    shared: bool = False


class SwiftStore(_Store):
    type: Literal["swift"] = "swift"
    container: Annotated[str, AfterValidator(validators.simple_name("glance"))] = "glance"
    # The program creates the container (as the store's account) before Glance starts.
    create_container: bool = False
    create_container_on_put: bool = False
    # Images go to each project's own account, with the user's token: no account here.
    multi_tenant: bool = False
    # Keystone v3 (given with or without /v3), project:user and key of the account images go
    # to (single tenant). Unset: the stack's Keystone and the glance user in the service
    # project (filled by `resolve`); a key left unset is the glance user's own password, known
    # only at deploy time.
    auth_url: KeystoneV3Url | None = None
    user: Annotated[str, AfterValidator(validators.swift_account)] | None = None
    key: NotEmptySecret | None = None
    region: Name | None = None
    endpoint_type: Literal["publicURL", "internalURL", "adminURL"] | None = None
    # The same Keystone as the machine running Pulumi reaches it (to create the container):
    # filled by `resolve`, never from the stack file.
    api_url: str | None = None

    @field_validator("api_url", mode="before")
    @classmethod
    def _not_an_input(cls, value: object) -> object:
        raise PydanticCustomError("extra_forbidden", "Extra inputs are not permitted")

    @model_validator(mode="after")
    def _account(self) -> SwiftStore:
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

    @property
    def project_name(self) -> str:
        return self._account_names()[0]

    @property
    def user_name(self) -> str:
        return self._account_names()[1]

    def _account_names(self) -> tuple[str, str]:
        if self.user is None:
            raise ValueError(f"store {self.id}: the account is known once resolved")
        project, _, user = self.user.partition(":")
        return project, user


class RbdStore(_Store):
    type: Literal["rbd"] = "rbd"
    pool: Annotated[str, AfterValidator(validators.simple_name("images"))] = "images"
    # The cephx id: part of the keyring's file name, so no '/' or '..'.
    user: CephxId = "glance"
    # Where versions before Glance's own directory wrote the store's ceph.conf (and the
    # keyring beside it), which the config steps' old names recall.
    ceph_conf: CephConf = "/etc/ceph/ceph.conf"
    mon_hosts: Annotated[list[CephMonitor], Field(min_length=1)]
    # The cephx key of client.<user>, as `ceph auth get-key client.glance` prints it.
    keyring: SecretStr

    @model_validator(mode="after")
    def _key_format(self) -> RbdStore:
        if not CEPH_KEY.fullmatch(self.keyring.get_secret_value()):
            raise ValueError("keyring: must be the cephx key itself (base64), as `ceph auth get-key` prints it")
        return self


class S3Store(_Store):
    type: Literal["s3"] = "s3"
    endpoint: HttpUrl
    bucket: Annotated[str, AfterValidator(validators.simple_name("glance"))]
    access_key: Annotated[str, AfterValidator(validators.name(128))]
    secret_key: NotEmptySecret
    create_bucket_on_put: bool = False
    bucket_url_format: Literal["auto", "path", "virtual"] | None = None


class CinderStore(_Store):
    type: Literal["cinder"] = "cinder"
    volume_type: Name
    catalog_info: str | None = None
    # A URL whose path may hold %(tenant)s.
    endpoint_template: HttpUrl | None = None
    region: Name | None = None

    @model_validator(mode="after")
    def _one_way_to_cinder(self) -> CinderStore:
        if self.catalog_info and self.endpoint_template:
            raise ValueError("catalogInfo, endpointTemplate: give one way to find Cinder, not both")
        if self.catalog_info is not None and len(self.catalog_info.split(":")) != 3:
            raise ValueError("catalogInfo: must be service_type:service_name:interface, e.g. volumev3::publicURL")
        return self


Store = FileStore | SwiftStore | RbdStore | S3Store | CinderStore
# A `glance:stores` item: its `type` picks the model.
StoreConfig = Annotated[Store, Field(discriminator="type")]


@dataclass(frozen=True)
class StoreDefaults:
    """What a store item leaves unset falls back to the stack's Keystone settings."""

    auth_url: str
    api_url: str
    account: str
    region: str


def resolve(store: Store, defaults: StoreDefaults) -> Store:
    """The store with the defaults that depend on other keys filled in."""
    if not isinstance(store, SwiftStore):
        return store
    return store.model_copy(
        update={
            "auth_url": store.auth_url or defaults.auth_url,
            "api_url": store.auth_url or defaults.api_url,
            "user": store.user or defaults.account,
            "region": store.region or defaults.region,
        }
    )
