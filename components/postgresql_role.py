"""SQL for the Glance role on PostgreSQL, as pure functions.

The role is made on the database host by the server's own psql (see
`scripts.postgresql_role_create`), not through pulumi-postgresql's Role, so that a role that
existed before the stack is used as it is and kept on destroy: the create step records on
the database host whether it created the role, and delete drops only such a role.

As in `components.mysql_account`, no value is written into the SQL as a quoted literal:
each travels hex-encoded (`decode('…', 'hex')`) and the server quotes it itself (format's
%I and %L), so every character means itself. The password is a SCRAM-SHA-256 verifier
(`components.scram`), never the plaintext.
"""

from __future__ import annotations

# A dollar-quote tag: the bodies below hold only our own text and hex digits.
_TAG = "$glance_pulumi$"


def _text(value: str) -> str:
    return f"convert_from(decode('{value.encode().hex()}', 'hex'), 'UTF8')"


def owner_entry(user: str, port: int) -> str:
    """How the database host records that this stack created the role (hex: any character)."""
    return f"{int(port)}:{user.encode().hex()}"


def exists(user: str) -> str:
    """SQL that prints 1 when the role exists."""
    return f"SELECT 1 FROM pg_roles WHERE rolname = {_text(user)};\n"


def ensure_role(user: str, verifier: str) -> str:
    """Create the login role if missing and set its password to `verifier` (idempotent)."""
    return (
        f"DO {_TAG}\n"
        "BEGIN\n"
        f"  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {_text(user)}) THEN\n"
        f"    EXECUTE format('CREATE ROLE %I', {_text(user)});\n"
        "  END IF;\n"
        f"  EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', {_text(user)}, {_text(verifier)});\n"
        "END\n"
        f"{_TAG};\n"
    )


def drop_role(user: str) -> str:
    """Drop the role; nothing to do if it is gone already."""
    return f"DO {_TAG}\nBEGIN\n  EXECUTE format('DROP ROLE IF EXISTS %I', {_text(user)});\nEND\n{_TAG};\n"
