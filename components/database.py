"""The Glance database and its account, on MySQL/MariaDB or PostgreSQL.

Steps, in the order the engine runs them:
1. the `glance` database (protected unless the stack opts out), with its character set
   and collation pinned (utf8mb4), so the server's reply matches what was asked and a
   re-run shows no change;
2. the `glance` account:
   - MySQL/MariaDB: users @localhost and @%, their password and their grant, made by the
     mysql client on the database host over SSH, as the guide does (see
     `components.mysql_account` for why not the pulumi-mysql provider);
   - PostgreSQL: a login role that owns the database, since PostgreSQL 15 no longer lets
     a mere grantee create tables in schema public, with a SCRAM-SHA-256 verifier as its
     password (see `components.scram`), made by psql on the database host over SSH (see
     `components.postgresql_role`), and its grant on the database;
   either way an account that existed before the stack is used and kept: delete drops
   only what the create step recorded (on the database host) as made by this stack;
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

from components import mysql_account, postgresql_role, scram, scripts
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

        self._secret_step(
            f"{name}-account",
            db,
            create=scripts.mysql_account_create(db.admin_user, db.user),
            delete=scripts.mysql_account_delete(db.admin_user, db.user),
            stdin=args.password.apply(account_stdin),
            depends_on=[database],
        )
        return database.name

    def _secret_step(
        self,
        name: str,
        db: DatabaseSettings,
        create: str,
        delete: str,
        stdin: pulumi.Output[str],
        depends_on: list[pulumi.Resource],
    ) -> remote.Command:
        """A step on the database host whose standard input (and so its output) holds a secret."""
        secret_stdin: pulumi.Output[str] = pulumi.Output.secret(stdin)
        return remote.Command(
            name,
            connection=connection(db.ssh),
            create=create,
            delete=delete,
            stdin=secret_stdin,
            add_previous_output_in_env=False,
            logging=remote.Logging.NONE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on, additional_secret_outputs=SECRET_OUTPUTS),
        )

    def _postgresql(
        self, name: str, args: DatabaseArgs, child: pulumi.ResourceOptions, protected: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        db = args.settings
        salt = random.RandomBytes(
            f"{name}-scram-salt", length=scram.SALT_BYTES, opts=pulumi.ResourceOptions(parent=self)
        )

        def role_sql(values: list[str]) -> str:
            password, salt_base64 = values
            return postgresql_role.ensure_role(db.user, scram.verifier(password, base64.b64decode(salt_base64)))

        role = self._secret_step(
            f"{name}-role",
            db,
            create=scripts.postgresql_role_create(db.user, db.port),
            delete=scripts.postgresql_role_delete(db.user, db.port),
            stdin=pulumi.Output.all(args.password, salt.base64).apply(role_sql),
            depends_on=[],
        )
        after_role = pulumi.ResourceOptions(depends_on=[role])
        database = postgresql.Database(
            f"{name}-database",
            name=db.name,
            owner=db.user,
            opts=pulumi.ResourceOptions.merge(protected, after_role),
        )
        postgresql.Grant(
            f"{name}-grant",
            database=database.name,
            role=db.user,
            object_type="database",
            privileges=["CREATE", "CONNECT", "TEMPORARY"],
            opts=pulumi.ResourceOptions.merge(child, after_role),
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
