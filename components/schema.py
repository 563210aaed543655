"""The database side of a version change (glance:packageVersion), around the API hosts' steps.

- Before the schema can move, a dump of the Glance database on the database host
  (`DUMP_DIR/<db>-before-<version>.sql`, root only; a stack output): taken on the first deploy
  and again whenever the pinned version changes, before the first host's schema step.
- After every host runs the new version: `glance-manage db contract` on the first host, if
  `db check` asks for it (releases with the rolling schema commands).

The schema step itself (db check, expand, migrate) is the first host's (components/node.py),
between its install and its restart.
"""

from __future__ import annotations

import re

import pulumi
from pulumi_command import remote

from components import scripts
from components.settings import DatabaseSettings, Settings
from components.ssh import SECRET_OUTPUTS, connection

DUMP_DIR = "/var/backups/glance-pulumi"


def dump_path(database: DatabaseSettings, version: str) -> str:
    # A Debian epoch's ':' would make the path awkward for scp: '_' instead.
    return f"{DUMP_DIR}/{database.name}-before-{re.sub(r'[^A-Za-z0-9.+~_-]', '_', version)}.sql"


def database_dump(name: str, settings: Settings, version: str, opts: pulumi.ResourceOptions) -> remote.Command:
    """The dump step on the database host; re-run (a new file) when the pinned version changes."""
    database = settings.database
    stdin = (
        pulumi.Output.secret(database.admin_password.get_secret_value() + "\n") if database.engine == "mysql" else None
    )
    return remote.Command(
        f"{name}-db-dump",
        connection=connection(database.ssh),
        create=scripts.database_dump(database, dump_path(database, version)),
        stdin=stdin,
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)),
    )


def schema_contract(
    name: str, settings: Settings, version: str, after: pulumi.Resource, opts: pulumi.ResourceOptions
) -> remote.Command:
    """`db contract` on the first API host once the last host is back (`after`); its standard
    input is the version, so a version change runs it again."""
    return remote.Command(
        f"{name}-db-contract",
        connection=connection(settings.api_hosts[0].ssh),
        create=scripts.schema_contract(),
        stdin=version,
        add_previous_output_in_env=False,
        logging=remote.Logging.NONE,
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=[after], additional_secret_outputs=SECRET_OUTPUTS)
        ),
    )
