"""The Glance database and its account, on MySQL/MariaDB or PostgreSQL.

Steps, in the order the engine runs them:
1. the `glance` database (protected unless the stack opts out), with its character set
   and collation pinned (utf8mb4), so the server's reply matches what was asked and a
   re-run shows no change;
2. the `glance` account:
   - MySQL/MariaDB: users @localhost and @%, their password and their grant, made by the
     mysql client on the database host over SSH, as the guide does (see
     `components.mysql_account` for why not the pulumi-mysql provider); dropped on delete;
   - PostgreSQL: a login role that owns the database, since PostgreSQL 15 no longer lets
     a mere grantee create tables in schema public, with a SCRAM-SHA-256 verifier as its
     password (see `components.scram`), and its grant on the database;
3. PostgreSQL only: the guide's pg_hba.conf line for the Glance host, placed before
   the generic rules so it matches, and a reload; removed again on delete.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
import pulumi_mysql as mysql
import pulumi_postgresql as postgresql
import pulumi_random as random
from pulumi_command import remote

from components import mysql_account, scram, scripts
from components.settings import DatabaseSettings
from components.ssh import SECRET_OUTPUTS, connection

MYSQL_CHARSET = "utf8mb4"
MYSQL_COLLATION = "utf8mb4_general_ci"


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
            self.name = self._mysql(name, args, protected)
        self.register_outputs({"name": self.name})

    def _mysql(self, name: str, args: DatabaseArgs, protected: pulumi.ResourceOptions) -> pulumi.Output[str]:
        db = args.settings
        database = mysql.Database(
            f"{name}-database",
            name=db.name,
            default_character_set=MYSQL_CHARSET,
            default_collation=MYSQL_COLLATION,
            opts=protected,
        )
        admin_password = db.admin_password.get_secret_value()

        def account_stdin(password: str) -> str:
            return f"{admin_password}\n{mysql_account.ensure_account(db.user, password, db.name)}"

        stdin: pulumi.Output[str] = pulumi.Output.secret(args.password.apply(account_stdin))
        remote.Command(
            f"{name}-account",
            connection=connection(db.ssh),
            create=scripts.mysql_as_admin(db.admin_user),
            delete=scripts.mysql_as_admin(db.admin_user, mysql_account.drop_account(db.user)),
            stdin=stdin,
            add_previous_output_in_env=False,
            logging=remote.Logging.NONE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[database], additional_secret_outputs=SECRET_OUTPUTS),
        )
        return database.name

    def _postgresql(
        self, name: str, args: DatabaseArgs, child: pulumi.ResourceOptions, protected: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        db = args.settings
        salt = random.RandomBytes(
            f"{name}-scram-salt", length=scram.SALT_BYTES, opts=pulumi.ResourceOptions(parent=self)
        )

        def verifier(values: list[str]) -> str:
            password, salt_base64 = values
            return scram.verifier(password, base64.b64decode(salt_base64))

        password: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(args.password, salt.base64).apply(verifier)
        )
        role = postgresql.Role(f"{name}-role", name=db.user, login=True, password=password, opts=child)
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
            remote.Command(
                f"{name}-pg-hba",
                connection=connection(db.ssh),
                create=scripts.add_hba_entry(db.pg_hba),
                delete=scripts.remove_hba_entry(db.pg_hba),
                add_previous_output_in_env=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return database.name
