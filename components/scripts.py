"""Shell text of the remote commands, as pure functions of settings.

Every script is idempotent: re-running it after a failure half way converges.
No script carries a secret: secrets travel on standard input.

Destroy removes only what the stack made. The steps keep what they need to know for that
in a root-only state directory on the host (STATE_DIR):
- `installed-packages`: the packages the install step brought (present after it, not
  before); the uninstall removes only those, and of them only what nothing else needs;
- `originals/<path>`: a package's config file as it was before the stack first wrote it;
  delete puts it back (content, owner, mode), a file the stack made from nothing goes;
- `created-directories`: directories a config step made, removed again once empty;
- `mysql-accounts`, `postgresql-roles` (on the database host): the accounts the stack
  created, which are the only ones delete drops.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable
from string import Template

from components import mysql_account, postgresql_role
from components.profiles import DbEngine, Profile, Release
from components.settings import DatabaseSettings, PgHba
from components.stores import StoreType

STRICT = "set -eu"
STATE_DIR = "/var/lib/glance-pulumi"
# In STATE_DIR: the Glance version the last pinned install replaced (components/installed_versions.py).
REPLACED_VERSION = "replaced-version"
# The first line of every config file the program renders (see rendering._render).
MANAGED_HEADER = "# Managed by glance-pulumi"


def _join(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def _words(items: Iterable[str]) -> str:
    return " ".join(shlex.quote(item) for item in items)


def _state(state_dir: str) -> tuple[str, ...]:
    """`$state`, the state directory: root's only, so everything in it is too."""
    return (f"state={shlex.quote(state_dir)}", '(umask 077 && mkdir -p "$state")', 'chmod 0700 "$state"')


def _present_function(profile: Profile) -> tuple[str, ...]:
    """`present FILE`: the packages present now, sorted, into FILE."""
    return (
        "present() {",
        f'  {profile.package_query} > "$1.tmp"',
        '  LC_ALL=C sort -u -o "$1.tmp" "$1.tmp"',
        "  # Every host has packages: an empty list means the query failed.",
        '  [ -s "$1.tmp" ] || { echo "cannot list the installed packages" >&2; exit 1; }',
        '  mv -f "$1.tmp" "$1"',
        "}",
    )


# Adds what an attempt brought (present now, not before its first try) to the record.
_RECORD = (
    'if [ -e "$state/packages-before" ]; then',
    '  present "$state/packages-after"',
    '  touch "$state/installed-packages"',
    '  LC_ALL=C comm -13 "$state/packages-before" "$state/packages-after" \\',
    '    | LC_ALL=C sort -u -m - "$state/installed-packages" > "$state/installed-packages.tmp"',
    '  mv -f "$state/installed-packages.tmp" "$state/installed-packages"',
    '  rm -f "$state/packages-before" "$state/packages-after"',
    "fi",
)


def install(
    profile: Profile,
    engine: DbEngine,
    store_types: Iterable[StoreType] = (),
    extra_packages: Iterable[str] = (),
    state_dir: str = STATE_DIR,
    version: str | None = None,
    found: str = "",
) -> str:
    """Install the packages; record in the state directory the ones that were not there before.

    The list of what was present is taken before the first attempt and kept until an attempt
    completes, so the run after an interrupted one still knows which packages are its own.
    With `version` (glance:packageVersion), Glance's packages go to exactly that version, up
    or down, without the package manager restarting Glance, and the step fails unless the
    host then reports it. `found` is what the program found on the host that is not the pin
    (installed_versions.found_version): part of the script, so a host off the pin re-runs it.
    """
    store_packages = [package for kind in store_types for package in profile.store_packages.get(kind, ())]
    names = dict.fromkeys((*profile.packages, *profile.db_driver_packages[engine], *store_packages, *extra_packages))
    if version is None:
        commands = [Template(line).substitute(packages=_words(names)) for line in profile.install_commands]
        report: tuple[str, ...] = ()
    else:
        pin = profile.version_pin
        pinned = [Template(pin.spec).substitute(package=package, version=version) for package in pin.packages]
        packages = _words([*pinned, *(name for name in names if name not in pin.packages)])
        wanted = shlex.quote(version)
        commands = [
            f"echo {shlex.quote('found on this host besides the pin: ' + (found or 'nothing'))}",
            f"before=$({pin.installed_version})",
            f'echo "Glance packages: ${{before:-not installed}} -> "{wanted}',
            # Kept, numbered, so the program's next look at this host finds what it found now
            # (installed_versions.found_version): no second rollout.
            f'if [ -n "$before" ] && [ "$before" != {wanted} ]; then',
            f"  n=$(sed -n 's/^.* #\\([0-9]*\\)$/\\1/p' \"$state/{REPLACED_VERSION}\" 2>/dev/null || true)",
            f'  printf \'%s #%s\\n\' "$before" "$((${{n:-0}} + 1))" > "$state/{REPLACED_VERSION}"',
            "fi",
            *(Template(line).substitute(packages=packages, version=wanted) for line in pin.install_commands),
        ]
        report = (
            f"now=$({pin.installed_version})",
            f'[ "$now" = {wanted} ] || {{ echo "the host reports ${{now:-nothing}}, not "{wanted} >&2; exit 1; }}',
        )
    return _join(
        STRICT,
        *_state(state_dir),
        *_present_function(profile),
        '[ -e "$state/packages-before" ] || present "$state/packages-before"',
        *commands,
        *_RECORD,
        *report,
        'echo "packages this stack installed:"',
        'cat "$state/installed-packages"',
    )


def uninstall(profile: Profile, state_dir: str = STATE_DIR) -> str:
    """Remove the packages the install step recorded, of those only what nothing else needs;
    everything that was on the host before the stack stays, and so do the profile's kept packages."""
    kept = " ".join(f"-e {shlex.quote(package)}" for package in profile.kept_packages)
    return _join(
        STRICT,
        *_state(state_dir),
        *_present_function(profile),
        "# An install interrupted before it recorded: what it brought so far is ours too.",
        *_RECORD,
        'if [ -s "$state/installed-packages" ]; then',
        '  ours="$state/packages-ours"',
        '  present "$state/packages-now"',
        '  LC_ALL=C comm -12 "$state/installed-packages" "$state/packages-now" \\',
        f'    | {{ grep -vxF {kept} || true; }} > "$ours"' if kept else '    > "$ours"',
        '  rm -f "$state/packages-now"',
        '  if [ -s "$ours" ]; then',
        *(f"    {line}" for line in profile.uninstall_commands),
        "  fi",
        '  rm -f "$ours" "$ours.unneeded"',
        "fi",
        'rm -f "$state/installed-packages"',
        # The config steps are gone before this one: what they restored needs no guard now.
        'if [ -d "$state/originals" ]; then',
        '  find "$state/originals" -name "*.restored" -type f -delete',
        '  find "$state/originals" -depth -type d -empty -delete',
        "fi",
        'rmdir "$state" 2>/dev/null || true',
    )


def write_file(path: str, keep_original: bool = False, state_dir: str = STATE_DIR) -> str:
    """Write standard input to `path` atomically, readable by root only until ownership is fixed.

    Directories it makes are recorded, so delete (remove_file) takes them away again. With
    `keep_original` (a file the distro's packages ship), the file as it was before the stack
    first wrote it is saved once, for delete to put back.
    """
    directory, name = path.rsplit("/", 1)
    lines = [
        STRICT,
        *_state(state_dir),
        f"d={shlex.quote(directory)}",
        'while [ ! -e "$d" ]; do',
        '  ( umask 077 && printf \'%s\\n\' "$d" >> "$state/created-directories" )',
        '  d=$(dirname "$d")',
        "done",
        # Before the umask: a directory made here (e.g. /etc/ceph) stays enterable by all.
        f"mkdir -p {shlex.quote(directory)}",
    ]
    if keep_original:
        original = shlex.quote(f"{state_dir}/originals{path}")
        quoted = shlex.quote(path)
        rendered = f"head -n 1 {quoted} | grep -q {shlex.quote('^' + MANAGED_HEADER)}"
        lines += [
            # Saved once, and never a file this program rendered (a stack deployed before
            # originals were kept wrote its own there without saving the package's).
            f"if [ ! -e {original} ] && [ -f {quoted} ] && ! {rendered}; then",
            f"  mkdir -p {shlex.quote(posixpath.dirname(f'{state_dir}/originals{path}'))}",
            f"  cp -p {quoted} {original}.tmp",
            f"  mv -f {original}.tmp {original}",
            "fi",
            f"rm -f {original}.restored",
        ]
    return _join(
        *lines,
        "umask 077",
        f"tmp=$(mktemp {shlex.quote(f'{directory}/.{name}.')}XXXXXX)",
        'cat > "$tmp"',
        f'mv -f "$tmp" {shlex.quote(path)}',
    )


def remove_file(path: str, state_dir: str = STATE_DIR) -> str:
    """Undo write_file: the saved original back (content, owner, mode), else remove the file;
    then the directories write_file made for it, once nothing else is in them."""
    directory, name = path.rsplit("/", 1)
    original = shlex.quote(f"{state_dir}/originals{path}")
    quoted = shlex.quote(path)
    return _join(
        STRICT,
        f"state={shlex.quote(state_dir)}",
        f"if [ -e {original} ]; then",
        # Back only where its directory still is (a purged package takes that along).
        f"  if [ -d {shlex.quote(directory)} ]; then",
        f"    tmp=$(mktemp {shlex.quote(f'{directory}/.{name}.')}XXXXXX)",
        f'    cp -p {original} "$tmp"',
        f'    mv -f "$tmp" {quoted}',
        "  fi",
        # A delete run again (an interrupted destroy) must not remove what it put back.
        f"  touch {original}.restored",
        f"  rm -f {original}",
        f"elif [ ! -e {original}.restored ]; then",
        f"  rm -f {quoted}",
        "fi",
        f"d={shlex.quote(directory)}",
        'while [ -f "$state/created-directories" ] && grep -qxF -- "$d" "$state/created-directories"; do',
        '  rmdir -- "$d" 2>/dev/null || [ ! -e "$d" ] || break',
        '  { grep -vxF -- "$d" "$state/created-directories" || true; } > "$state/created-directories.tmp"',
        '  mv -f "$state/created-directories.tmp" "$state/created-directories"',
        '  d=$(dirname "$d")',
        "done",
        'if [ -e "$state/created-directories" ] && [ ! -s "$state/created-directories" ]; then',
        '  rm -f "$state/created-directories"',
        "fi",
        'if [ -d "$state/originals" ]; then find "$state/originals" -depth -type d -empty -delete; fi',
    )


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


def enable_units(units: Iterable[str], daemon_reload: bool = False) -> str:
    """Enable and start; `daemon_reload` for a unit whose file the stack writes."""
    reload = ("systemctl daemon-reload",) if daemon_reload else ()
    return _join(STRICT, *reload, f"systemctl enable --now {_words(units)}")


def _manage() -> tuple[str, ...]:
    """`manage ARGS`: glance-manage as user glance; `check`: `db check`'s exit status into $rc."""
    return (
        'manage() { su -s /bin/sh -c "glance-manage $*" glance; }',
        "check() { rc=0; manage db check || rc=$?; }",
    )


def schema_upgrade(release: Release, tries: int = 10, delay_seconds: int = 6) -> str:
    """The schema step of a version change, on the first host once it has the new packages and
    before it restarts. `glance-manage db check` decides: 0 nothing to do, 3 expand (then
    migrate), 4 migrate; 5 leaves the contract for when every host runs the new code
    (schema_contract). A release without the rolling commands runs db_sync."""
    if not release.rolling_schema:
        return db_sync(tries, delay_seconds)
    return _join(
        "set -u",
        *_manage(),
        # 0, 3, 4 and 5 are answers; anything else: the database is not reachable yet.
        f"for attempt in $(seq 1 {tries}); do",
        "  check",
        "  case $rc in 0|3|4|5) break ;; esac",
        f'  echo "db check attempt $attempt failed ($rc)" >&2; sleep {delay_seconds}',
        "done",
        "case $rc in",
        '  0) echo "schema: up to date, no change" ;;',
        "  3) manage db expand || exit 1; manage db migrate || exit 1 ;;",
        "  4) manage db migrate || exit 1 ;;",
        '  5) echo "schema: contract pending, run once every host has the new code" ;;',
        "  *) exit 1 ;;",
        "esac",
    )


def schema_contract() -> str:
    """`db contract` once every host runs the new code, if `db check` asks for it."""
    return _join(
        "set -u",
        *_manage(),
        "check",
        "case $rc in",
        '  0) echo "schema: up to date, no contract needed" ;;',
        "  5) manage db contract || exit 1 ;;",
        '  *) echo "db check exited $rc before the contract" >&2; exit 1 ;;',
        "esac",
    )


def database_dump(database: DatabaseSettings, path: str) -> str:
    """Dump the Glance database on the database host into `path` (root only), before a schema
    change; a dump already there is kept (it is the one from before the change). MySQL: the
    administrator's password is standard input's first line."""
    directory = shlex.quote(posixpath.dirname(path))
    quoted = shlex.quote(path)
    if database.engine == "mysql":
        dump = [
            *_mysql_client(database.admin_user),
            "dump=$(command -v mariadb-dump || command -v mysqldump)",
            f'"$dump" {_words(["--user=" + database.admin_user, "--single-transaction", "--routines"])} '
            f'--databases {shlex.quote(database.name)} > "$tmp"',
        ]
    else:
        dump = [
            "cd /",
            f'runuser -u postgres -- pg_dump -p {int(database.port)} -d {shlex.quote(database.name)} > "$tmp"',
        ]
    return _join(
        STRICT,
        f'if [ -s {quoted} ]; then echo "kept the dump taken before: "{quoted}; exit 0; fi',
        "umask 077",
        f"mkdir -p {directory}",
        f"tmp=$(mktemp {directory}/.dump.XXXXXX)",
        *dump,
        f'mv -f "$tmp" {quoted}',
        f'echo "database dumped to "{quoted}',
    )


def drain(release: Release, units: Iterable[str], wait_seconds: int) -> str:
    """Take the host out of its load balancer: /healthcheck answers 503 while the disable file
    exists; then wait for the balancer's checks to see it. A host not serving yet (the first
    deploy) has nothing to drain."""
    main_unit = next(iter(units))
    return _join(
        STRICT,
        f"if systemctl is-active --quiet {shlex.quote(main_unit)}; then",
        f"  touch {shlex.quote(release.healthcheck_disable_file)}",
        f'  echo "drained: /healthcheck answers 503; waiting {int(wait_seconds)}s for the load balancer"',
        f"  sleep {int(wait_seconds)}",
        "fi",
    )


def undrain(release: Release, wait_seconds: int) -> str:
    """Back into the load balancer, and wait until its checks see the host again, so the next
    host drains only when this one takes requests."""
    return _join(
        STRICT,
        f"rm -f {shlex.quote(release.healthcheck_disable_file)}",
        f'echo "undrained; waiting {int(wait_seconds)}s for the load balancer"',
        f"sleep {int(wait_seconds)}",
    )


def disable_units(units: Iterable[str]) -> str:
    return _join(f"systemctl disable --now {_words(units)} || true")


def reload_unit(unit: str, config: str) -> str:
    """SIGHUP to the unit's main process: glance-api reloads its configuration without dropping a
    request (components/reload.py). A unit not running, or started after `config` was last
    written (a first deploy, a restart), has read it already: no signal, so no request meets
    workers being replaced for nothing."""
    quoted = shlex.quote(unit)
    return _join(
        STRICT,
        f"systemctl is-active --quiet {quoted} || exit 0",
        f'started=$(date -d "$(systemctl show -p ExecMainStartTimestamp --value {quoted})" +%s)',
        f'if [ "$(stat -c %Y {shlex.quote(config)})" -le "$started" ]; then',
        '  echo "glance-api started after its configuration was written: nothing to reload"',
        "  exit 0",
        "fi",
        f"systemctl kill --kill-whom=main --signal=HUP {quoted}",
        # A configuration it cannot load stops it: that fails the step.
        "sleep 2",
        f"systemctl is-active --quiet {quoted}",
        'echo "SIGHUP sent: glance-api reloaded its configuration"',
    )


def restart_units(units: Iterable[str]) -> str:
    return _join(STRICT, f"systemctl restart {_words(units)}")


def reload_units(units: Iterable[str]) -> str:
    """Reload (a unit that is not running is started): a running service keeps serving. The
    units' files are read again first, in case the stack rewrote one."""
    return _join(STRICT, "systemctl daemon-reload", f"systemctl reload-or-restart {_words(units)}")


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


def _mysql_client(admin_user: str) -> tuple[str, ...]:
    """`$client`: the mysql client as the administrator, whose password is standard input's
    first line. The client reads it from MYSQL_PWD, its environment (never argv, and no
    option-file quoting to get right)."""
    return (
        "IFS= read -r MYSQL_PWD",
        "export MYSQL_PWD",
        # MariaDB 11 ships the client as `mariadb`; `mysql` is its compatibility name.
        "client=$(command -v mariadb || command -v mysql)",
    )


def _mysql(admin_user: str) -> str:
    return f'"$client" {_words(["--user=" + admin_user, "--batch", "--skip-column-names"])}'


def _heredoc(command: str, text: str) -> tuple[str, ...]:
    # Our own SQL only, whose values are hex literals: it cannot contain the end line.
    return (f"{command} <<'SQL'", text.rstrip("\n"), "SQL")


def _db_state(state_dir: str) -> tuple[str, ...]:
    """`$state` on the database host: STATE_DIR, or a directory of the SSH user's own when
    that user cannot make it (the mysql client needs no root)."""
    return (
        f"state={shlex.quote(state_dir)}",
        '(umask 077 && mkdir -p "$state") 2>/dev/null || state="$HOME/.glance-pulumi"',
        '(umask 077 && mkdir -p "$state")',
        'chmod 0700 "$state"',
    )


def _record_owner(marker_file: str, entry: str, existed: str, description: str) -> tuple[str, ...]:
    """Record `entry` as made by this stack unless it is recorded already or `existed` (a
    shell condition) says it was there before the stack: recorded before it is made, so an
    interrupted run still knows it as its own."""
    return (
        f'if ! grep -qxF {shlex.quote(entry)} "$state/{marker_file}" 2>/dev/null; then',
        f"  if {existed}; then",
        f"    echo {shlex.quote(f'{description}: there before the stack, left in place on delete')}",
        "  else",
        f"    printf '%s\\n' {shlex.quote(entry)} >> \"$state/{marker_file}\"",
        "  fi",
        "fi",
    )


def _forget_owner(marker_file: str, entry: str) -> tuple[str, ...]:
    return (
        f'  {{ grep -vxF {shlex.quote(entry)} "$state/{marker_file}" || true; }} > "$state/{marker_file}.tmp"',
        f'  mv -f "$state/{marker_file}.tmp" "$state/{marker_file}"',
    )


def _clean_state(marker_file: str) -> tuple[str, ...]:
    return (
        f'if [ -e "$state/{marker_file}" ] && [ ! -s "$state/{marker_file}" ]; then rm -f "$state/{marker_file}"; fi',
        'rmdir "$state" 2>/dev/null || true',
    )


MYSQL_ACCOUNTS = "mysql-accounts"


def mysql_account_create(
    admin_user: str, user: str, hosts: Iterable[str] = mysql_account.HOSTS, state_dir: str = STATE_DIR
) -> str:
    """Create or update the account with the SQL on standard input (after the administrator's
    password), recording which of its user@host accounts did not exist before."""
    hosts = tuple(hosts)
    command = _mysql(admin_user)
    lines = [
        STRICT,
        *_mysql_client(admin_user),
        *_db_state(state_dir),
        *_heredoc(f"existing=$({command}", mysql_account.existing_hosts(user, hosts)),
        ")",
    ]
    for host in hosts:
        existed = f"printf '%s\\n' \"$existing\" | grep -qxF {shlex.quote(mysql_account.hex_text(host))}"
        description = f"the account @{host}"
        lines += _record_owner(MYSQL_ACCOUNTS, mysql_account.owner_entry(user, host), existed, description)
    return _join(*lines, command)


def mysql_account_delete(
    admin_user: str, user: str, hosts: Iterable[str] = mysql_account.HOSTS, state_dir: str = STATE_DIR
) -> str:
    """Drop the user@host accounts this stack created; accounts that existed before stay."""
    lines = [STRICT, *_mysql_client(admin_user), *_db_state(state_dir)]
    for host in hosts:
        entry = mysql_account.owner_entry(user, host)
        lines += [
            f'if grep -qxF {shlex.quote(entry)} "$state/{MYSQL_ACCOUNTS}" 2>/dev/null; then',
            *_heredoc(f"  {_mysql(admin_user)}", mysql_account.drop_account(user, [host])),
            *_forget_owner(MYSQL_ACCOUNTS, entry),
            "fi",
        ]
    return _join(*lines, *_clean_state(MYSQL_ACCOUNTS))


POSTGRESQL_ROLES = "postgresql-roles"


def _psql(port: int) -> tuple[str, ...]:
    """`pg`: psql as the server's superuser through its local socket (peer authentication),
    as the pg_hba step already works as root on this host."""
    return (
        "cd /",
        f"pg() {{ runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -p {int(port)} -d postgres; }}",
    )


def postgresql_role_create(user: str, port: int, state_dir: str = STATE_DIR) -> str:
    """Create or update the role with the SQL on standard input, recording it as the stack's
    when it did not exist before."""
    return _join(
        STRICT,
        *_state(state_dir),
        *_psql(port),
        *_heredoc("existing=$(pg", postgresql_role.exists(user)),
        ")",
        *_record_owner(POSTGRESQL_ROLES, postgresql_role.owner_entry(user, port), '[ -n "$existing" ]', "the role"),
        "pg",
    )


def postgresql_role_delete(user: str, port: int, state_dir: str = STATE_DIR) -> str:
    """Drop the role only if this stack created it."""
    entry = postgresql_role.owner_entry(user, port)
    return _join(
        STRICT,
        f"state={shlex.quote(state_dir)}",
        *_psql(port),
        f'if grep -qxF {shlex.quote(entry)} "$state/{POSTGRESQL_ROLES}" 2>/dev/null; then',
        *_heredoc("  pg", postgresql_role.drop_role(user)),
        *_forget_owner(POSTGRESQL_ROLES, entry),
        "fi",
        *_clean_state(POSTGRESQL_ROLES),
    )


# ---- pg_hba.conf -----------------------------------------------------------------------

# Words pg_hba reads as keywords in the database and user fields unless they are quoted.
_HBA_KEYWORDS = frozenset({"all", "sameuser", "samerole", "samegroup", "replication"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _hba_marker(hba: PgHba) -> str:
    return f"# glance-pulumi {hba.database}/{hba.user}"


def _hba_name(value: str) -> str:
    """A database or user field as pg_hba reads back exactly `value`: quoted unless it is a
    plain name, so '#', ',', blanks, keywords, '+' and '@' mean themselves ('"' doubled)."""
    if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", value) and value not in _HBA_KEYWORDS:
        return value
    return '"' + value.replace('"', '""') + '"'


def hba_line(hba: PgHba) -> str:
    for field, value in (("database", hba.database), ("user", hba.user), ("address", hba.address)):
        if _CONTROL.search(value):
            raise ValueError(f"pg_hba {field} {value!r}: a control character cannot be written into pg_hba.conf")
    if re.search(r'[\s#",]', hba.address):
        raise ValueError(f"pg_hba address {hba.address!r}: must be one host name or CIDR")
    fields = (_hba_name(hba.database), _hba_name(hba.user), hba.address, hba.method, _hba_marker(hba))
    return "host    " + "    ".join(fields)


# awk reads the line and the marker from its environment, which it takes as they are (`-v`
# would interpret backslash escapes); the shell passes them single-quoted, as data.
_HBA_AWK_PRELUDE = (
    'BEGIN { line = ENVIRON["GLANCE_PULUMI_HBA_LINE"]; mark = ENVIRON["GLANCE_PULUMI_HBA_MARK"] } '
    "function ours(n) { n = length($0) - length(mark); return n >= 0 && substr($0, n + 1) == mark } "
)


def _rewrite_hba(hba: PgHba, awk_program: str, line: str = "") -> str:
    path = shlex.quote(hba.path)
    environment = f"GLANCE_PULUMI_HBA_LINE={shlex.quote(line)} GLANCE_PULUMI_HBA_MARK={shlex.quote(_hba_marker(hba))}"
    return _join(
        STRICT,
        f'tmp=$(mktemp "$(dirname {path})/.pg_hba.XXXXXX")',
        f'{environment} awk {shlex.quote(_HBA_AWK_PRELUDE + awk_program)} {path} > "$tmp"',
        f'chown --reference={path} "$tmp"',
        f'chmod --reference={path} "$tmp"',
        f'mv -f "$tmp" {path}',
        f"systemctl reload {shlex.quote(hba.unit)}",
    )


def add_hba_entry(hba: PgHba) -> str:
    # The first matching pg_hba line wins: ours goes before the first existing rule.
    program = (
        "ours() { next } "
        "!done && $0 !~ /^[[:space:]]*(#|$)/ { print line; done = 1 } "
        "{ print } "
        "END { if (!done) print line }"
    )
    return _rewrite_hba(hba, program, hba_line(hba))


def remove_hba_entry(hba: PgHba) -> str:
    # Only the line that ends with this stack's marker.
    return _rewrite_hba(hba, "!ours()")
