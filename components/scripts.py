"""Shell text of the remote commands, as pure functions of settings.

Every script is idempotent: re-running it after a failure half way converges.
No script carries a secret: secrets travel on standard input.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from string import Template

from components.profiles import DbEngine, Profile
from components.settings import PgHba
from components.stores import StoreType

STRICT = "set -eu"


def _join(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def _words(items: Iterable[str]) -> str:
    return " ".join(shlex.quote(item) for item in items)


def install(profile: Profile, engine: DbEngine, store_types: Iterable[StoreType] = ()) -> str:
    store_packages = [package for kind in store_types for package in profile.store_packages.get(kind, ())]
    packages = _words(dict.fromkeys((*profile.packages, *profile.db_driver_packages[engine], *store_packages)))
    return _join(STRICT, *(Template(line).substitute(packages=packages) for line in profile.install_commands))


def uninstall(profile: Profile) -> str:
    return _join(STRICT, *profile.uninstall_commands)


def write_file(path: str) -> str:
    """Write standard input to `path` atomically, readable by root only until ownership is fixed."""
    directory, name = path.rsplit("/", 1)
    return _join(
        STRICT,
        # Before the umask: a directory made here (e.g. /etc/ceph) stays enterable by all.
        f"mkdir -p {shlex.quote(directory)}",
        "umask 077",
        f"tmp=$(mktemp {shlex.quote(f'{directory}/.{name}.')}XXXXXX)",
        'cat > "$tmp"',
        f'mv -f "$tmp" {shlex.quote(path)}',
    )


def remove_files(paths: Iterable[str]) -> str:
    return _join(f"rm -f {_words(paths)}")


def fix_ownership(profile: Profile, paths: Iterable[str], directories: Iterable[str] = ()) -> str:
    if profile.ownership_trigger_unit is not None:
        return _join(STRICT, f"systemctl restart {shlex.quote(profile.ownership_trigger_unit)}")
    # glance-api reads its config as user glance; root keeps write access.
    lines = [f"chown root:glance {_words(paths)}", f"chmod 0640 {_words(paths)}"]
    if directories:
        lines += [f"chown root:glance {_words(directories)}", f"chmod 0750 {_words(directories)}"]
    return _join(STRICT, *lines)


def ensure_store(*paths: str) -> str:
    return _join(STRICT, f"install -d -o glance -g glance -m 0750 {_words(paths)}")


def remove_store(*paths: str) -> str:
    return _join(f"rm -rf --one-file-system {_words(paths)}")


def db_sync(tries: int = 10, delay_seconds: int = 6) -> str:
    # The database may still be settling (grants, pg_hba reload): retry like upstream deployers.
    return _join(
        f"for attempt in $(seq 1 {tries}); do",
        '  if su -s /bin/sh -c "glance-manage db_sync" glance; then exit 0; fi',
        f'  echo "db_sync attempt $attempt failed" >&2; sleep {delay_seconds}',
        "done",
        "exit 1",
    )


def enable_units(units: Iterable[str]) -> str:
    return _join(STRICT, f"systemctl enable --now {_words(units)}")


def disable_units(units: Iterable[str]) -> str:
    return _join(f"systemctl disable --now {_words(units)} || true")


def restart_units(units: Iterable[str]) -> str:
    return _join(STRICT, f"systemctl restart {_words(units)}")


def run_python(source: str, *args: str) -> str:
    return f"python3 -c {shlex.quote(source)} {_words(args)}".rstrip()


IMAGE_API_LINE = "export OS_IMAGE_API_VERSION=2"


def add_image_api_version(files: Iterable[str]) -> str:
    line = shlex.quote(IMAGE_API_LINE)
    return _join(
        STRICT,
        f"for f in {_words(files)}; do",
        f'  grep -qxF {line} "$f" 2>/dev/null || echo {line} >> "$f"',
        "done",
    )


def remove_image_api_version(files: Iterable[str]) -> str:
    return _join(
        f"for f in {_words(files)}; do",
        f'  [ -f "$f" ] && sed -i "/^{IMAGE_API_LINE}$/d" "$f"',
        "done",
        "exit 0",
    )


def mysql_as_admin(admin_user: str, sql: str | None = None) -> str:
    """Run SQL as the database administrator with the host's mysql client.

    Standard input starts with the administrator's password on a line of its own. The
    client reads it from MYSQL_PWD, its environment (never argv, and no option-file quoting
    to get right); the SQL is `sql` if given, else the rest of standard input.
    """
    client = f'"$client" {_words(["--user=" + admin_user, "--batch", "--skip-column-names"])}'
    return _join(
        STRICT,
        "IFS= read -r MYSQL_PWD",
        "export MYSQL_PWD",
        # MariaDB 11 ships the client as `mariadb`; `mysql` is its compatibility name.
        "client=$(command -v mariadb || command -v mysql)",
        *((client,) if sql is None else (f"{client} <<'SQL'", sql.rstrip("\n"), "SQL")),
    )


def _hba_marker(hba: PgHba) -> str:
    return f"# glance-pulumi {hba.database}/{hba.user}"


def hba_line(hba: PgHba) -> str:
    return f"host    {hba.database}    {hba.user}    {hba.address}    {hba.method}    {_hba_marker(hba)}"


def _rewrite_hba(hba: PgHba, awk_program: str, line: str = "") -> str:
    path = shlex.quote(hba.path)
    return _join(
        STRICT,
        f'tmp=$(mktemp "$(dirname {path})/.pg_hba.XXXXXX")',
        f"awk -v line={shlex.quote(line)} -v mark={shlex.quote(_hba_marker(hba))} "
        f'{shlex.quote(awk_program)} {path} > "$tmp"',
        f'chown --reference={path} "$tmp"',
        f'chmod --reference={path} "$tmp"',
        f'mv -f "$tmp" {path}',
        f"systemctl reload {shlex.quote(hba.unit)}",
    )


def add_hba_entry(hba: PgHba) -> str:
    # The first matching pg_hba line wins: ours goes before the first existing rule.
    program = (
        "index($0, mark) { next } "
        "!done && $0 !~ /^[[:space:]]*(#|$)/ { print line; done = 1 } "
        "{ print } "
        "END { if (!done) print line }"
    )
    return _rewrite_hba(hba, program, hba_line(hba))


def remove_hba_entry(hba: PgHba) -> str:
    return _rewrite_hba(hba, "!index($0, mark)")
