"""The Swift containers of the stores that ask for one (`createContainer`).

A single-tenant Swift store puts every image in one container of one account: the
store's `user` (by default the glance user in the service project). The container is
made in that account, so the provider here authenticates as the store's user, not as
the Keystone administrator, whose container would be in another account. It holds the
image bytes: protected unless the stack opts out, like the database and the file store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from components.settings import KeystoneSettings
from components.stores import SwiftStore


@dataclass(frozen=True)
class ContainersArgs:
    stores: Sequence[SwiftStore]
    keystone: KeystoneSettings
    glance_password: pulumi.Output[str]
    protect: bool
    # The account's user and its role must exist before it can authenticate.
    identity: pulumi.Resource


class SwiftContainers(pulumi.ComponentResource):
    containers: list[openstack.objectstorage.Container]

    def __init__(self, name: str, args: ContainersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("glance:object_store:SwiftContainers", name, None, opts)
        self.containers = [self._container(f"{name}-{store.id}", store, args) for store in args.stores]
        self.register_outputs({"containers": [container.name for container in self.containers]})

    def _container(self, name: str, store: SwiftStore, args: ContainersArgs) -> openstack.objectstorage.Container:
        password = args.glance_password if store.key is None else pulumi.Output.secret(store.key.get_secret_value())
        provider = openstack.Provider(
            f"{name}-account",
            auth_url=store.api_url,
            user_name=store.user_name,
            password=password,
            tenant_name=store.project_name,
            user_domain_id=args.keystone.domain_id,
            project_domain_id=args.keystone.domain_id,
            region=store.region,
            cacert_file=args.keystone.ca_bundle,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.identity]),
        )
        return openstack.objectstorage.Container(
            f"{name}-container",
            name=store.container,
            region=store.region,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=args.protect),
        )
