"""Glance as one component: everything a stack deploys, under one `GlanceService`.

Before anything is registered, every SSH host's key is checked against its pin
(`components.host_keys`); a pinned stack (glance:packageVersion) then asks each API host which
Glance version it runs (`components.installed_versions`). Then, in dependency order:
passwords -> database + Keystone identity (+ Swift containers) -> (pinned: the database dump) ->
each API host's remote steps, host after host where they restart -> (pinned: the schema
contract) -> the CirrOS image.

Every child is named from the component's name (the stack's program uses "glance"). Stacks
deployed before this component existed registered these children at the top of the stack:
each direct child carries an alias to the root stack, and their own children follow them,
so such a stack keeps every resource (its URN moves, nothing is replaced).

Another Pulumi program can compose it: `GlanceService(name, GlanceServiceArgs(settings))`,
then use its outputs (see examples/compose).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import host_keys, installed_versions, schema
from components.database import DatabaseArgs, GlanceDatabase
from components.identity import GlanceIdentity, IdentityArgs
from components.image import CirrosImage, ImageArgs
from components.node import GlanceNode, NodeArgs
from components.object_store import ContainersArgs, SwiftContainers
from components.passwords import PasswordsArgs, ServicePasswords
from components.providers import Providers, providers
from components.settings import Settings
from components.stores import SwiftStore

TYPE = "glance:service:GlanceService"


@dataclass(frozen=True)
class GlanceServiceArgs:
    # The validated stack config (components.settings.read_settings).
    settings: Settings


def check_host_keys(settings: Settings) -> None:
    """Each SSH host's key against its pin (raises HostKeyMismatchError); warns about what cannot be
    checked now."""
    ssh_targets = [*(host.ssh for host in settings.api_hosts), settings.database.ssh]
    if any(target.host_key is None for target in ssh_targets):
        pulumi.log.warn("glance:insecureIgnoreHostKeys is true: SSH host keys are not verified; a throwaway lab only")
    for unreachable in host_keys.verify(ssh_targets):
        pulumi.log.warn(f"{unreachable} did not answer the host key check now; its steps verify the pinned key")


def found_versions(settings: Settings) -> dict[str, str]:
    """Pinned stacks: what each API host holds besides the pin, so an `up` corrects a host changed by
    hand (components/installed_versions.py)."""
    if settings.package_version is None:
        return {}
    found, unreachable = installed_versions.observe(
        [host.ssh for host in settings.api_hosts], settings.profile, settings.package_version
    )
    for host in unreachable:
        pulumi.log.warn(f"{host} did not say which Glance version it runs; taken to be at glance:packageVersion")
    return found


class GlanceService(pulumi.ComponentResource):
    """The Image service on the stack's API hosts, its database, its Keystone identity and the CirrOS image."""

    providers: Providers
    profile: str
    release: str
    endpoints: dict[str, str]
    keystone_user_id: pulumi.Output[str]
    image_service_id: pulumi.Output[str]
    database: pulumi.Output[str]
    image_id: pulumi.Output[str]
    stores: dict[str, Any]
    database_dump: str | None

    def __init__(self, name: str, args: GlanceServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        settings = args.settings
        # First: a host whose key changed stops the run before anything is registered.
        check_host_keys(settings)
        found = found_versions(settings)
        super().__init__(TYPE, name, None, opts)
        # A direct child: registered at the top of the stack before this component existed.
        moved = pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)])
        self.providers = providers(name, settings.keystone, settings.database, moved)

        passwords = ServicePasswords(
            name,
            PasswordsArgs(
                db_password=settings.database.password,
                glance_password=settings.keystone.glance_password,
                limits_password=settings.limits.password if settings.limits else None,
                limits_enabled=settings.limits is not None,
            ),
            moved,
        )
        database = GlanceDatabase(
            name,
            DatabaseArgs(
                settings=settings.database,
                password=passwords.db,
                provider=self.providers.database,
                protect=settings.protect_data,
            ),
            moved,
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
                provider=self.providers.keystone,
            ),
            moved,
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
            moved,
        )
        version = settings.package_version
        # Pinned: a dump before the schema moves (the first deploy's db_sync, a version change's step).
        dump = (
            schema.database_dump(name, settings, version, pulumi.ResourceOptions(parent=self, depends_on=[database]))
            if version
            else None
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
                        after=nodes[-1].undrain if nodes else None,
                        dump=dump,
                        found_version=found.get(host.ssh.host, ""),
                    ),
                    moved,
                )
            )
        if version and settings.profile.release.rolling_schema:
            schema.schema_contract(name, settings, version, nodes[-1].undrain, pulumi.ResourceOptions(parent=self))
        image = CirrosImage(
            name,
            ImageArgs(settings=settings.image, keystone=settings.keystone, ready=[node.ready for node in nodes]),
            moved,
        )

        self.profile = settings.profile.name
        self.release = settings.profile.release.name
        self.endpoints = dict(vars(settings.glance.endpoints))
        self.keystone_user_id = identity.user_id
        self.image_service_id = identity.service_id
        self.database = database.name
        self.image_id = image.id
        self.stores = {"enabled": [s.id for s in settings.glance.stores], "default": settings.glance.default_store}
        self.database_dump = schema.dump_path(settings.database, version) if version else None
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, Any]:
        """The stack's outputs, by the names the program exports."""
        return {
            "profile": self.profile,
            "release": self.release,
            "endpoints": self.endpoints,
            "keystone_user_id": self.keystone_user_id,
            "image_service_id": self.image_service_id,
            "database": self.database,
            "image_id": self.image_id,
            "stores": self.stores,
            # Pinned stacks: on the database host, the dump taken before the version's schema step.
            **({"database_dump": self.database_dump} if self.database_dump else {}),
        }
