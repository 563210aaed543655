"""SQL for the Glance account on MySQL or MariaDB, as pure functions.

The account is made with the database's own client on the database host (see
`scripts.mysql_account_create`), not through the pulumi-mysql provider: that provider asks the
server for `innodb_version`, which MariaDB 10.10 and later no longer have, so it cannot
create users there.

No value is ever written into the SQL as a quoted literal. Each string travels as a
hexadecimal literal and the server quotes it itself (QUOTE) into a prepared statement, so
every character of a password means itself whatever the client's or server's escaping
rules (backslashes, quotes, NO_BACKSLASH_ESCAPES) and the client never parses a quote that
came from a value.

Destroy drops only the user@host accounts the stack created: the create step looks them up
first and records on the database host those that did not exist (see
`scripts.mysql_account_create`); an account that was there before keeps existing.
"""

from __future__ import annotations

from collections.abc import Iterable

# The guide's two accounts: local socket connections and connections from any host.
HOSTS = ("localhost", "%")

# QUOTE() escapes with backslashes: the session must read them back as escapes.
_SESSION = "SET SESSION sql_mode = '';"


def _text(value: str) -> str:
    return f"CONVERT(X'{value.encode().hex()}' USING utf8mb4)"


def hex_text(value: str) -> str:
    """`value` as MySQL's HEX() prints it (of the UTF-8 the server keeps names in)."""
    return value.encode().hex().upper()


def owner_entry(user: str, host: str) -> str:
    """How the database host records that this stack created `user`@`host` (hex: any character)."""
    return f"{hex_text(user)}@{hex_text(host)}"


def existing_hosts(user: str, hosts: Iterable[str] = HOSTS) -> str:
    """SQL that prints, one a line as HEX(), which of `hosts` `user` already has an account at.

    The names are compared as bytes (HEX of both sides), never by a collation, which would
    take 'Glance' for 'glance'."""
    wanted = ", ".join(f"'{hex_text(host)}'" for host in hosts)
    return f"SELECT HEX(Host) FROM mysql.user WHERE HEX(User) = '{hex_text(user)}' AND HEX(Host) IN ({wanted});\n"


def _identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _account(user: str, host: str) -> str:
    return f"CONCAT(QUOTE({_text(user)}), '@', QUOTE({_text(host)}))"


def _execute(*parts: str) -> str:
    return (
        f"SET @statement = CONCAT({', '.join(parts)});\n"
        "PREPARE statement FROM @statement;\nEXECUTE statement;\nDEALLOCATE PREPARE statement;"
    )


def ensure_account(user: str, password: str, database: str, hosts: Iterable[str] = HOSTS) -> str:
    """Create the account if missing, set its password, grant it the database (idempotent)."""
    statements = [_SESSION]
    for host in hosts:
        account = _account(user, host)
        password_literal = f"QUOTE({_text(password)})"
        statements += [
            _execute("'CREATE USER IF NOT EXISTS '", account, "' IDENTIFIED BY '", password_literal),
            # An existing account (a re-run, or a changed password) gets the password too.
            _execute("'ALTER USER '", account, "' IDENTIFIED BY '", password_literal),
            _execute(f"'GRANT ALL PRIVILEGES ON ', {_text(_identifier(database))}, '.* TO '", account),
        ]
    return "\n".join(statements) + "\n"


def drop_account(user: str, hosts: Iterable[str] = HOSTS) -> str:
    """Drop the account (its grants go with it); nothing to do if it is gone already."""
    statements = [_SESSION] + [_execute("'DROP USER IF EXISTS '", _account(user, host)) for host in hosts]
    return "\n".join(statements) + "\n"
