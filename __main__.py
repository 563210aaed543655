"""Deploy the OpenStack Image service (Glance) onto a controller.

The stack config is validated first and every SSH host's key checked against its pin; then
the diagram below, in dependency order:
passwords -> database + Keystone identity (+ Swift containers) -> each API host's remote
steps -> the CirrOS image.
"""

from __future__ import annotations

import pulumi

from components import host_keys
from components.database import DatabaseArgs, GlanceDatabase
from components.identity import GlanceIdentity, IdentityArgs
from components.image import CirrosImage, ImageArgs
from components.node import GlanceNode, NodeArgs
from components.object_store import ContainersArgs, SwiftContainers
from components.passwords import PasswordsArgs, ServicePasswords
from components.providers import providers
from components.settings import read_settings
from components.stores import SwiftStore

settings = read_settings()
ssh_targets = [*(host.ssh for host in settings.api_hosts), settings.database.ssh]
if any(target.host_key is None for target in ssh_targets):
    pulumi.log.warn("glance:insecureIgnoreHostKeys is true: SSH host keys are not verified; a throwaway lab only")
for unreachable in host_keys.verify(ssh_targets):
    pulumi.log.warn(f"{unreachable} did not answer the host key check now; its steps verify the pinned key")
name = "glance"
provider = providers(name, settings.keystone, settings.database)

passwords = ServicePasswords(
    name,
    PasswordsArgs(
        db_password=settings.database.password,
        glance_password=settings.keystone.glance_password,
        limits_password=settings.limits.password if settings.limits else None,
        limits_enabled=settings.limits is not None,
    ),
)
database = GlanceDatabase(
    name,
    DatabaseArgs(
        settings=settings.database,
        password=passwords.db,
        provider=provider.database,
        protect=settings.protect_data,
    ),
)
identity = GlanceIdentity(
    name,
    IdentityArgs(
        keystone=settings.keystone,
        endpoints=settings.glance.endpoints,
        service_description=settings.profile.release.service_description,
        glance_password=passwords.glance,
        limits=settings.limits,
        limits_password=passwords.limits,
        provider=provider.keystone,
    ),
)
containers = SwiftContainers(
    name,
    ContainersArgs(
        stores=[s for s in settings.glance.stores if isinstance(s, SwiftStore) and s.create_container],
        keystone=settings.keystone,
        glance_password=passwords.glance,
        protect=settings.protect_data,
        identity=identity,
    ),
)
nodes: list[GlanceNode] = []
for index, host in enumerate(settings.api_hosts):
    nodes.append(
        GlanceNode(
            # The first host's steps keep the names of a one-host stack, so hosts can be added.
            name if index == 0 else f"{name}-{index + 1}",
            NodeArgs(
                settings=settings,
                db_password=passwords.db,
                glance_password=passwords.glance,
                limits_password=passwords.limits,
                # oslo_limit finds its service and region through the image endpoint's id.
                limits_endpoint_id=identity.endpoint_ids["public"] if settings.limits else None,
                prerequisites=[database, identity, containers],
                host=host,
                schema=nodes[0].db_sync if nodes else None,
                after=nodes[-1].ready if nodes else None,
            ),
        )
    )
image = CirrosImage(
    name,
    ImageArgs(settings=settings.image, keystone=settings.keystone, ready=[node.ready for node in nodes]),
)

pulumi.export("profile", settings.profile.name)
pulumi.export("release", settings.profile.release.name)
pulumi.export("endpoints", vars(settings.glance.endpoints))
pulumi.export("keystone_user_id", identity.user_id)
pulumi.export("image_service_id", identity.service_id)
pulumi.export("database", database.name)
pulumi.export("image_id", image.id)
pulumi.export("stores", {"enabled": [s.id for s in settings.glance.stores], "default": settings.glance.default_store})
