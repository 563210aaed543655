"""Every store type's glance_store options and files, in one place (as kolla's glance-api.conf.j2
shows every store section in one file).

`options` is the table keyed by store type: each case sets that type's options, the plain
ones (glance-api.conf) apart from those holding a secret (the credentials file). rendering.py
places them into the single-store form ([glance_store]) or a section per store id. A store
type's files of its own (Swift's references file, rbd's ceph.conf and keyring) are here too.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import assert_never

from components.stores import CinderStore, FileStore, RbdStore, S3Store, Store, SwiftStore

# Not the package's own glance-swift.conf: a conffile we would clobber, and delete on destroy.
SWIFT_REFERENCES = "/etc/glance/glance-pulumi-swift.conf"
# Glance's own Ceph client files, one pair per store named by the store id (letters, digits,
# '-', '_'): never a shared /etc/ceph/ceph.conf or keyring that other Ceph clients read, so
# the stack owns them outright and destroy removes only them.
RBD_DIRECTORY = "/etc/ceph/glance-pulumi"


@dataclass(frozen=True)
class StoreOptions:
    plain: dict[str, str]
    # Options holding a credential: rendered with the other credentials, never in the plain file.
    secret: dict[str, str]


def options(store: Store) -> StoreOptions:
    """The glance_store options of one store, by its type."""
    match store:
        case FileStore():
            return StoreOptions({"filesystem_store_datadir": store.path + "/"}, {})
        case SwiftStore():
            swift = {
                "swift_store_container": store.container,
                "swift_store_create_container_on_put": str(store.create_container_on_put),
            }
            if store.multi_tenant:
                swift["swift_store_multi_tenant"] = "True"
            else:
                # The account's credentials are in the references file, a secret of its own.
                swift["swift_store_config_file"] = SWIFT_REFERENCES
                swift["default_swift_reference"] = store.id
            if store.region:
                swift["swift_store_region"] = store.region
            if store.endpoint_type:
                swift["swift_store_endpoint_type"] = store.endpoint_type
            return StoreOptions(swift, {})
        case RbdStore():
            rbd = {"rbd_store_pool": store.pool, "rbd_store_user": store.user, "rbd_store_ceph_conf": rbd_conf(store)}
            return StoreOptions(rbd, {})
        case S3Store():
            s3 = {
                "s3_store_host": store.endpoint,
                "s3_store_access_key": store.access_key,
                "s3_store_bucket": store.bucket,
                "s3_store_create_bucket_on_put": str(store.create_bucket_on_put),
            }
            if store.bucket_url_format:
                s3["s3_store_bucket_url_format"] = store.bucket_url_format
            return StoreOptions(s3, {"s3_store_secret_key": store.secret_key.get_secret_value()})
        case CinderStore():
            cinder = {"cinder_volume_type": store.volume_type}
            if store.catalog_info:
                cinder["cinder_catalog_info"] = store.catalog_info
            if store.endpoint_template:
                cinder["cinder_endpoint_template"] = store.endpoint_template
            if store.region:
                cinder["cinder_os_region_name"] = store.region
            return StoreOptions(cinder, {})
        case _:
            assert_never(store)


def ca_options(store: Store, ca_file: str | None) -> dict[str, str]:
    """The options that make a store's client trust `ca_file` (None: the system's CAs), where the
    store talks https and its driver reads one. Zed's s3 driver has none (boto3 reads
    AWS_CA_BUNDLE), nor do the file and rbd stores, which speak no https."""
    if ca_file is None:
        return {}
    match store:
        case SwiftStore():
            # Multi-tenant: the storage URL comes from the catalog, whatever Keystone's scheme.
            https = store.multi_tenant or (store.auth_url or "").startswith("https://")
            return {"swift_store_cacert": ca_file} if https else {}
        case CinderStore():
            # Cinder's URL comes from the catalog (or cinderEndpointTemplate).
            return {"cinder_ca_certificates_file": ca_file}
        case FileStore() | RbdStore() | S3Store():
            return {}
        case _:
            assert_never(store)


# ---- Swift: the references file ------------------------------------------------------------


def swift_reference(
    store: SwiftStore, glance_password: str, domain_by_name: bool, domain: tuple[str, str]
) -> dict[str, str]:
    """A single-tenant store's section of the references file (glance_store reads it with
    configparser): the account its images go to."""
    domain_id, domain_name = domain
    domain_options = (
        {"user_domain_name": domain_name, "project_domain_name": domain_name}
        if domain_by_name
        else {"user_domain_id": domain_id, "project_domain_id": domain_id}
    )
    if store.auth_url is None or store.user is None:
        raise ValueError(f"store {store.id}: the account is known once resolved")
    return {
        "auth_version": "3",
        "auth_address": store.auth_url,
        "user": store.user,
        "key": glance_password if store.key is None else store.key.get_secret_value(),
        **domain_options,
    }


# ---- rbd: Glance's own ceph.conf and keyring --------------------------------------------------


def rbd_conf(store: RbdStore) -> str:
    return f"{RBD_DIRECTORY}/{store.id}.conf"


def rbd_keyring(store: RbdStore) -> str:
    return f"{RBD_DIRECTORY}/{store.id}.keyring"


def rbd_legacy_paths(store: RbdStore) -> tuple[str, str]:
    """ceph.conf and keyring where versions before RBD_DIRECTORY wrote them (the stack's cephConf)."""
    return store.ceph_conf, f"{posixpath.dirname(store.ceph_conf)}/ceph.client.{store.user}.keyring"


def ceph_conf_text(store: RbdStore) -> str:
    return (
        "# Managed by glance-pulumi: edit the stack config, not this file.\n"
        f"[global]\nmon_host = {','.join(store.mon_hosts)}\n\n"
        f"[client.{store.user}]\nkeyring = {rbd_keyring(store)}\n"
    )


def keyring_text(store: RbdStore) -> str:
    return f"[client.{store.user}]\n\tkey = {store.keyring.get_secret_value()}\n"
