"""The database account and the image provider: how the program hands credentials over."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import string
import subprocess
from pathlib import Path

import pytest

from components import mysql_account, postgresql_role, rendering, scram, scripts
from tests.unit.harness import GENERATED_SALT, TEST_SECRETS, Deployment, pinned, plain, run_stack

EVERY_PUNCTUATION = string.punctuation + " "


# ---- MySQL / MariaDB: SQL on the database host ------------------------------------------------


def hex_literals(sql: str) -> list[str]:
    return [bytes.fromhex(value).decode() for value in re.findall(r"X'([0-9a-f]*)'", sql)]


def test_account_sql_carries_every_value_as_hex_only() -> None:
    password = EVERY_PUNCTUATION + "é"
    sql = mysql_account.ensure_account("glance", password, "glance`db")
    # Apart from the hex literals, the client sees only our own fixed SQL text.
    assert password not in sql and "\\" not in sql
    assert re.sub(r"X'[0-9a-f]*'", "X''", sql).count("'") % 2 == 0
    values = hex_literals(sql)
    assert values.count(password) == 4  # CREATE and ALTER, for each of the two hosts
    assert "`glance``db`" in values and {"localhost", "%", "glance"} <= set(values)


def test_account_sql_is_idempotent_and_drop_takes_both_hosts() -> None:
    sql = mysql_account.ensure_account("glance", "pw", "glance")
    assert sql.startswith("SET SESSION sql_mode = '';")
    assert sql.count("'CREATE USER IF NOT EXISTS '") == 2 and sql.count("'ALTER USER '") == 2
    assert sql.count("'GRANT ALL PRIVILEGES ON '") == 2
    assert sql.count("PREPARE statement FROM @statement;") == sql.count("EXECUTE statement;") == 6
    drop = mysql_account.drop_account("glance")
    assert drop.count("'DROP USER IF EXISTS '") == 2 and set(hex_literals(drop)) == {"glance", "localhost", "%"}


class FakeServer:
    """A mysql client (`mariadb`) and `runuser ... psql` that log the SQL they get and answer
    the scripts' existence queries from a file, as the database host's server would."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.state = tmp_path / "state"
        self.existing = tmp_path / "existing"
        self.existing.write_text("")
        self.sql = tmp_path / "sql.log"
        answer = f"""sql=$(cat)
printf '%s\\n-- end\\n' "$sql" >> {self.sql}
case "$sql" in SELECT*) cat {self.existing} ;; esac
"""
        for tool, head in (("mariadb", 'echo "MYSQL_PWD=$MYSQL_PWD $*" >> {log}'), ("runuser", 'echo "$*" >> {log}')):
            path = self.bin / tool
            path.write_text("#!/bin/sh\n" + head.format(log=tmp_path / "argv.log") + "\n" + answer)
            path.chmod(0o755)

    def run(self, script: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}"}
        result = subprocess.run(["sh", "-c", script], input=stdin, capture_output=True, text=True, env=env, timeout=30)
        assert result.returncode == 0, result.stderr
        return result

    def statements(self) -> list[str]:
        return [s.strip() for s in self.sql.read_text().split("-- end") if s.strip()] if self.sql.exists() else []


def test_mysql_delete_drops_only_the_accounts_the_stack_created(tmp_path: Path) -> None:
    server = FakeServer(tmp_path)
    server.existing.write_text(mysql_account.hex_text("%") + "\n")  # glance@% was there before
    create = scripts.mysql_account_create("admin", "glance", state_dir=str(server.state))
    stdin = "admin p'w\n" + mysql_account.ensure_account("glance", "pw", "glance")
    first = server.run(create, stdin)
    assert first.stdout == "the account @%: there before the stack, left in place on delete\n"
    marker = server.state / "mysql-accounts"
    assert marker.read_text().split() == [mysql_account.owner_entry("glance", "localhost")]
    # The account SQL itself reached the client as its standard input, the password as MYSQL_PWD.
    assert server.statements()[-1] == mysql_account.ensure_account("glance", "pw", "glance").strip()
    assert "MYSQL_PWD=admin p'w --user=admin" in (tmp_path / "argv.log").read_text()
    # A re-run finds both accounts, and still knows which one is its own.
    server.existing.write_text(f"{mysql_account.hex_text('localhost')}\n{mysql_account.hex_text('%')}\n")
    server.run(create, stdin)
    assert marker.read_text().split() == [mysql_account.owner_entry("glance", "localhost")]
    server.sql.unlink()
    delete = scripts.mysql_account_delete("admin", "glance", state_dir=str(server.state))
    server.run(delete, stdin)
    assert server.statements() == [mysql_account.drop_account("glance", ["localhost"]).strip()]
    assert not server.state.exists()
    server.run(delete, stdin)  # again: nothing recorded, nothing dropped
    assert len(server.statements()) == 1


def test_account_names_reach_the_scripts_as_hex_only() -> None:
    user = "gl'an`ce\\$x"
    scripts_text = [
        scripts.mysql_account_create("root", user),
        scripts.mysql_account_delete("root", user),
        scripts.postgresql_role_create(user, 5432),
        scripts.postgresql_role_delete(user, 5432),
    ]
    for script in scripts_text:
        assert user not in script and "'" + user not in script
    assert mysql_account.existing_hosts(user).count(mysql_account.hex_text(user)) == 1


@pytest.mark.parametrize("existed", [False, True])
def test_postgresql_delete_drops_the_role_only_if_the_stack_created_it(tmp_path: Path, existed: bool) -> None:
    server = FakeServer(tmp_path)
    server.existing.write_text("1\n" if existed else "")
    role_sql = postgresql_role.ensure_role("glance", "SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2VydmVy")
    server.run(scripts.postgresql_role_create("glance", 5432, state_dir=str(server.state)), role_sql)
    assert server.statements()[-1] == role_sql.strip()
    assert (
        "-u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -p 5432 -d postgres" in (tmp_path / "argv.log").read_text()
    )
    server.existing.write_text("1\n")  # it exists now, either way
    server.run(scripts.postgresql_role_create("glance", 5432, state_dir=str(server.state)), role_sql)
    server.sql.unlink()
    server.run(scripts.postgresql_role_delete("glance", 5432, state_dir=str(server.state)), role_sql)
    assert server.statements() == ([] if existed else [postgresql_role.drop_role("glance").strip()])
    assert not server.state.exists()


@pytest.fixture(scope="module")
def debian() -> Deployment:
    return run_stack("debian", dbPassword=EVERY_PUNCTUATION)


def test_mysql_account_is_made_over_ssh_with_secrets_on_stdin_only(debian: Deployment) -> None:
    assert not debian.of_type("mysql:index/user:User") and not debian.of_type("mysql:index/grant:Grant")
    account = debian.named("glance-account")
    assert account.type == "command:remote:Command" and account.parent.endswith("GlanceDatabase::glance")
    assert {"stdin", "connection"} <= account.secret_inputs
    admin_password, sql = plain(account.inputs["stdin"]).split("\n", 1)
    assert admin_password == TEST_SECRETS["dbAdminPassword"]
    assert sql == mysql_account.ensure_account("glance", EVERY_PUNCTUATION, "glance")
    for field in ("create", "delete"):
        script = account.inputs[field]
        assert "MYSQL_PWD" in script and "--user=root" in script
        assert TEST_SECRETS["dbAdminPassword"] not in script and EVERY_PUNCTUATION not in script
    assert account.inputs["create"] == scripts.mysql_account_create("root", "glance")
    assert account.inputs["delete"] == scripts.mysql_account_delete("root", "glance")
    assert "<<'SQL'" in account.inputs["delete"] and "DROP USER IF EXISTS" in account.inputs["delete"]
    assert account.inputs["addPreviousOutputInEnv"] is False and account.inputs["logging"] == "none"
    assert {"stdout", "stderr"} <= set(account.additional_secret_outputs)
    assert debian.depends_on("glance-account", "glance-database")
    assert debian.depends_on("glance-db-sync", "glance-account")


def test_mysql_database_character_set_is_pinned(debian: Deployment) -> None:
    database = debian.named("glance-database").inputs
    assert (database["defaultCharacterSet"], database["defaultCollation"]) == ("utf8mb4", "utf8mb4_general_ci")


def test_database_ssh_host_can_be_another_machine() -> None:
    deployment = run_stack("debian", dbSshHost="db1.example", **pinned("controller", "db1.example"))
    assert plain(deployment.named("glance-account").inputs["connection"])["host"] == "db1.example"
    assert plain(deployment.named("glance-install").inputs["connection"])["host"] == "controller"


# ---- PostgreSQL: a SCRAM-SHA-256 verifier --------------------------------------------------------


def test_scram_verifier_matches_rfc_7677_exchange() -> None:
    """The verifier's keys must answer the RFC's example exchange for user/pencil."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    value = scram.verifier("pencil", salt)
    match = re.fullmatch(r"SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)", value)
    assert match and base64.b64decode(match.group(1)) == salt
    stored_key, server_key = (base64.b64decode(match.group(i)) for i in (2, 3))
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    server_signature = hmac.digest(server_key, auth_message, "sha256")
    assert base64.b64encode(server_signature) == b"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    signature = hmac.digest(stored_key, auth_message, "sha256")
    client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_scram_applies_saslprep_like_postgresql() -> None:
    salt = bytes(16)
    # Non-ASCII space maps to a space; a soft hyphen maps to nothing; NFKC folds ligatures.
    assert scram.verifier("a\u00a0b\u00adc", salt) == scram.verifier("a bc", salt)
    assert scram.verifier("\ufb01", salt) == scram.verifier("fi", salt)
    # Prohibited output (a control character): the raw password is used, as PostgreSQL does.
    assert scram.verifier("a\u0007", salt) != scram.verifier("a", salt)


def test_postgresql_role_gets_a_verifier_with_a_salt_kept_in_state() -> None:
    deployment = run_stack("rhel", dbPassword=EVERY_PUNCTUATION)
    role = deployment.named("glance-role")
    assert role.type == "command:remote:Command" and {"stdin", "connection"} <= role.secret_inputs
    verifier = scram.verifier(EVERY_PUNCTUATION, GENERATED_SALT)
    assert plain(role.inputs["stdin"]) == postgresql_role.ensure_role("glance", verifier)
    assert verifier not in plain(role.inputs["stdin"])  # hex-encoded, the server decodes it
    for field in ("create", "delete"):
        assert EVERY_PUNCTUATION not in role.inputs[field] and "runuser -u postgres" in role.inputs[field]
    assert role.inputs["logging"] == "none" and {"stdout", "stderr"} <= set(role.additional_secret_outputs)
    salt = deployment.named("glance-scram-salt")
    assert salt.type == "random:index/randomBytes:RandomBytes" and salt.inputs["length"] == 16
    assert deployment.depends_on("glance-role", "glance-scram-salt")
    # The database and its grant name the role, made first (and dropped last).
    assert deployment.depends_on("glance-database", "glance-role")
    assert deployment.depends_on("glance-grant", "glance-role")


def test_postgresql_role_sql_carries_every_value_as_hex_only() -> None:
    name, verifier = 'gl"an\\ce$x', "SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2VydmVy"
    sql = postgresql_role.ensure_role(name, verifier)
    assert name not in sql and verifier not in sql
    values = [bytes.fromhex(value).decode() for value in re.findall(r"decode\('([0-9a-f]*)', 'hex'\)", sql)]
    assert set(values) == {name, verifier}
    # Identifiers and literals are quoted by the server (format's %I and %L), never by us.
    assert "format('CREATE ROLE %I'" in sql and "format('ALTER ROLE %I WITH LOGIN PASSWORD %L'" in sql
    drop = postgresql_role.drop_role(name)
    assert "format('DROP ROLE IF EXISTS %I'" in drop and name not in drop


# ---- config files: what oslo.config reads back ---------------------------------------------------


@pytest.mark.parametrize("value", ["plain", " lead", "trail ", '"quoted"', "'q'", '"', "$x", "a b", "#;=:"])
def test_config_values_survive_oslo_config_parsing(value: str) -> None:
    line = rendering.render_ini({"s": {"password": value}}).splitlines()[-1]
    # oslo.config's iniparser: split at the first '=', strip, drop one pair of matching quotes.
    text = line.split("=", 1)[1].strip()
    if text and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1]
    assert text.replace("$$", "$") == value


# ---- the image: its own provider, configured after the readiness gate ----------------------------


def test_image_has_a_provider_configured_after_the_gate(debian: Deployment) -> None:
    image = debian.named("glance-image")
    provider = debian.named("glance-image-provider")
    assert provider.type == "pulumi:providers:openstack" and "password" in provider.secret_inputs
    assert image.provider.startswith(provider.urn + "::")
    assert debian.depends_on("glance-image-provider", "glance-ready")
    identity_provider = debian.named("glance-keystone").urn
    assert debian.named("glance-user").provider.startswith(identity_provider + "::")
