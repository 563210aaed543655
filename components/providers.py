"""Explicit providers, configured from settings rather than ambient provider config."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_mysql as mysql
import pulumi_openstack as openstack
import pulumi_postgresql as postgresql

from components.settings import DatabaseSettings, KeystoneSettings


@dataclass(frozen=True)
class Providers:
    keystone: openstack.Provider
    database: mysql.Provider | postgresql.Provider


def keystone_provider(
    name: str, keystone: KeystoneSettings, opts: pulumi.ResourceOptions | None = None
) -> openstack.Provider:
    return openstack.Provider(
        name,
        auth_url=keystone.api_url,
        user_name=keystone.admin_user,
        password=pulumi.Output.secret(keystone.admin_password.get_secret_value()),
        tenant_name=keystone.admin_project,
        user_domain_id=keystone.domain_id,
        project_domain_id=keystone.domain_id,
        region=keystone.region,
        # The CA inline (the provider takes a path or the PEM text); None: the system's CAs.
        cacert_file=keystone.ca_bundle,
        opts=opts,
    )


def database_provider(
    name: str, database: DatabaseSettings, opts: pulumi.ResourceOptions | None = None
) -> mysql.Provider | postgresql.Provider:
    password = pulumi.Output.secret(database.admin_password.get_secret_value())
    if database.engine == "postgresql":
        return postgresql.Provider(
            f"{name}-postgresql",
            host=database.admin_host,
            port=database.admin_port,
            username=database.admin_user,
            password=password,
            opts=opts,
        )
    return mysql.Provider(
        f"{name}-mysql",
        endpoint=f"{database.admin_host}:{database.admin_port}",
        username=database.admin_user,
        password=password,
        opts=opts,
    )


def providers(
    name: str, keystone: KeystoneSettings, database: DatabaseSettings, opts: pulumi.ResourceOptions | None = None
) -> Providers:
    return Providers(
        keystone=keystone_provider(f"{name}-keystone", keystone, opts), database=database_provider(name, database, opts)
    )
