"""The Glance database and its account, on MySQL/MariaDB or PostgreSQL.

Steps, in the order the engine runs them:
1. the `glance` database (protected unless the stack opts out);
2. the `glance` account: MySQL users @localhost and @% (created, then granted, which
   MySQL 8 and MariaDB both accept), or a PostgreSQL login role that owns the database,
   since PostgreSQL 15 no longer lets a mere grantee create tables in schema public;
3. ALL privileges on the database for that account;
4. PostgreSQL only: the guide's pg_hba.conf line for the Glance host, placed before
   the generic rules so it matches, and a reload; removed again on delete.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_mysql as mysql
import pulumi_postgresql as postgresql
from pulumi_command import remote

from components import scripts
from components.settings import DatabaseSettings, PgHba
from components.ssh import connection

MYSQL_HOSTS = ("localhost", "%")


@dataclass(frozen=True)
class DatabaseArgs:
    settings: DatabaseSettings
    password: pulumi.Output[str]
    provider: mysql.Provider | postgresql.Provider
    protect: bool


class GlanceDatabase(pulumi.ComponentResource):
    name: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("glance:database:GlanceDatabase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        # Dropping the database loses every image record: keep it unless the stack opts out.
        protected = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=args.protect))
        if isinstance(args.provider, postgresql.Provider):
            self.name = self._postgresql(name, args, child, protected)
        else:
            self.name = self._mysql(name, args, child, protected)
        self.register_outputs({"name": self.name})

    def _mysql(
        self, name: str, args: DatabaseArgs, child: pulumi.ResourceOptions, protected: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        db = args.settings
        database = mysql.Database(f"{name}-database", name=db.name, opts=protected)
        for host in MYSQL_HOSTS:
            suffix = "local" if host == "localhost" else "any"
            user = mysql.User(
                f"{name}-user-{suffix}", user=db.user, host=host, plaintext_password=args.password, opts=child
            )
            mysql.Grant(
                f"{name}-grant-{suffix}",
                user=user.user,
                host=user.host,
                database=database.name,
                privileges=["ALL PRIVILEGES"],
                opts=child,
            )
        return database.name

    def _postgresql(
        self, name: str, args: DatabaseArgs, child: pulumi.ResourceOptions, protected: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        db = args.settings
        role = postgresql.Role(f"{name}-role", name=db.user, login=True, password=args.password, opts=child)
        database = postgresql.Database(f"{name}-database", name=db.name, owner=role.name, opts=protected)
        postgresql.Grant(
            f"{name}-grant",
            database=database.name,
            role=role.name,
            object_type="database",
            privileges=["CREATE", "CONNECT", "TEMPORARY"],
            opts=child,
        )
        if db.pg_hba is not None:
            self._hba_entry(name, db.pg_hba)
        return database.name

    def _hba_entry(self, name: str, hba: PgHba) -> None:
        remote.Command(
            f"{name}-pg-hba",
            connection=connection(hba.host),
            create=scripts.add_hba_entry(hba),
            delete=scripts.remove_hba_entry(hba),
            opts=pulumi.ResourceOptions(parent=self),
        )
