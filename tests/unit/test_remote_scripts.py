"""The remote scripts, executed for real here: shell through bash, Python through python3."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from components import scripts
from components.profiles import DEBIAN, ZED, DbEngine
from components.remote import script_source
from components.settings import PgHba
from tests.unit.fake_services import FakeCloud, serve

DEBIAN_PG_HBA = """\
# Database administrative login by Unix domain socket
local   all             postgres                                peer

# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
"""


def run(
    script: str, *, stdin: str = "", path_dir: Path | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path_dir is not None:
        env["PATH"] = f"{path_dir}:{env['PATH']}"
    return subprocess.run(["bash", "-c", script], input=stdin, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def fake_systemctl(tmp_path: Path) -> Path:
    """Records systemctl calls: this machine's PID 1 is not systemd."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    (bin_dir / "systemctl").chmod(0o755)
    return bin_dir


def hba(path: Path) -> PgHba:
    return PgHba(
        path=str(path),
        database="glance",
        user="glance",
        address="127.0.0.1/32",
        method="md5",
        unit="postgresql.service",
    )


def rules(text: str) -> list[list[str]]:
    return [line.split()[:5] for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_pg_hba_entry_goes_before_the_generic_rules_once(tmp_path: Path, fake_systemctl: Path) -> None:
    conf = tmp_path / "pg_hba.conf"
    conf.write_text(DEBIAN_PG_HBA)
    conf.chmod(0o640)
    for _ in range(2):
        result = run(scripts.add_hba_entry(hba(conf)), path_dir=fake_systemctl)
        assert result.returncode == 0, result.stderr
    entries = rules(conf.read_text())
    assert entries[0] == ["host", "glance", "glance", "127.0.0.1/32", "md5"]
    assert entries.count(["host", "glance", "glance", "127.0.0.1/32", "md5"]) == 1
    assert entries[1:] == rules(DEBIAN_PG_HBA)
    assert oct(conf.stat().st_mode & 0o777) == "0o640"
    assert (tmp_path / "systemctl.log").read_text().splitlines() == ["reload postgresql.service"] * 2


def test_pg_hba_entry_is_removed_on_delete(tmp_path: Path, fake_systemctl: Path) -> None:
    conf = tmp_path / "pg_hba.conf"
    conf.write_text(DEBIAN_PG_HBA)
    assert run(scripts.add_hba_entry(hba(conf)), path_dir=fake_systemctl).returncode == 0
    assert run(scripts.remove_hba_entry(hba(conf)), path_dir=fake_systemctl).returncode == 0
    assert conf.read_text() == DEBIAN_PG_HBA


def hba_tokens(line: str) -> list[tuple[str, bool]]:
    """pg_hba's tokenizer (hba.c next_token): blanks split, '#' outside quotes starts a
    comment, '"' quotes and '""' inside quotes is one '"'. Returns (text, quoted) pairs."""
    tokens: list[tuple[str, bool]] = []
    i = 0
    while i < len(line):
        while i < len(line) and line[i] in " \t":
            i += 1
        if i >= len(line) or line[i] == "#":
            break
        text, quoted, in_quote, was_quote = "", False, False, False
        while i < len(line) and (line[i] not in " \t" or in_quote):
            c = line[i]
            if c == "#" and not in_quote:
                return [*tokens, (text, quoted)] if text or quoted else tokens
            if c != '"' or was_quote:
                text += c
            was_quote = not was_quote if in_quote and c == '"' else False
            if c == '"':
                in_quote, quoted = not in_quote, True
            i += 1
        tokens.append((text, quoted))
    return tokens


ODD_VALUES = ['gl\\n"$x\\', "all all 0.0.0.0/0 trust #", "glance,postgres", "+admins", "@file", "all", "d\\t$(id)`id`'"]


@pytest.mark.parametrize("value", ODD_VALUES)
def test_pg_hba_values_are_data_not_escapes_or_code(tmp_path: Path, fake_systemctl: Path, value: str) -> None:
    conf = tmp_path / "pg_hba.conf"
    conf.write_text(DEBIAN_PG_HBA)
    entry = PgHba(path=str(conf), database=value, user=value, address="10.0.0.1/32", method="md5", unit="postgresql")
    for _ in range(2):
        result = run(scripts.add_hba_entry(entry), path_dir=fake_systemctl)
        assert result.returncode == 0, result.stderr
    lines = conf.read_text().splitlines()
    ours = [line for line in lines if "glance-pulumi" in line]
    # Exactly the line the program meant, nothing interpreted on the way (no escapes, no expansion).
    assert ours == [scripts.hba_line(entry)]
    assert lines.index(ours[0]) < lines.index("local   all             all                                     peer")
    # PostgreSQL reads back one database and one user, both quoted where they need to be (so
    # no keyword, list, group or include) and exactly the value.
    tokens = hba_tokens(ours[0])
    assert [text for text, _ in tokens] == ["host", value, value, "10.0.0.1/32", "md5"]
    if value in ("all", "+admins", "@file") or "," in value or "#" in value:
        assert tokens[1][1] and tokens[2][1]
    assert run(scripts.remove_hba_entry(entry), path_dir=fake_systemctl).returncode == 0
    assert conf.read_text() == DEBIAN_PG_HBA


def test_pg_hba_removes_only_its_own_line(tmp_path: Path, fake_systemctl: Path) -> None:
    conf = tmp_path / "pg_hba.conf"
    other = "host    glance    glance2    10.0.0.2/32    md5    # glance-pulumi glance/glance2\n"
    conf.write_text(other + DEBIAN_PG_HBA)
    assert run(scripts.add_hba_entry(hba(conf)), path_dir=fake_systemctl).returncode == 0
    assert run(scripts.remove_hba_entry(hba(conf)), path_dir=fake_systemctl).returncode == 0
    assert conf.read_text() == other + DEBIAN_PG_HBA


@pytest.mark.parametrize("value", ["a\nhost all all 0.0.0.0/0 trust", "a\rb", "a\x00", "a\x7f"])
def test_pg_hba_refuses_a_line_break_or_control_character(tmp_path: Path, value: str) -> None:
    entry = PgHba(path="/x/pg_hba.conf", database="glance", user=value, address="h", method="md5", unit="u")
    with pytest.raises(ValueError, match="control character"):
        scripts.add_hba_entry(entry)


def test_config_is_written_atomically_from_stdin_and_private(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "glance" / "glance-api.conf"
    state = tmp_path / "state"
    secret_text = "[database]\nconnection = mysql+pymysql://glance:s%24cret@db:3306/glance\n"
    result = run(scripts.write_file(str(target), state_dir=str(state)), stdin=secret_text)
    assert result.returncode == 0, result.stderr
    assert target.read_text() == secret_text
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in target.parent.iterdir()] == ["glance-api.conf"]
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    # Made from nothing: delete removes the file and the directories made for it.
    assert run(scripts.remove_file(str(target), state_dir=str(state))).returncode == 0
    assert not (tmp_path / "etc").exists()
    assert list(state.iterdir()) == []


def test_a_package_config_file_gets_its_original_back_on_delete(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "glance" / "glance-api.conf"
    target.parent.mkdir(parents=True)
    original = b"# Debian's glance-api.conf\n[DEFAULT]\n\xe2\x82\xac = \\$x\n"
    target.write_bytes(original)
    target.chmod(0o644)
    os.chown(target, 4321, 4322)
    state = tmp_path / "state"
    write = scripts.write_file(str(target), keep_original=True, state_dir=str(state))
    for text in ("# Managed by glance-pulumi: one\n", "# Managed by glance-pulumi: two\n"):
        result = run(write, stdin=text)  # saved once: the second write keeps the first original
        assert result.returncode == 0, result.stderr
        assert target.read_text() == text
    saved = state / "originals" / str(target).lstrip("/")
    assert saved.read_bytes() == original
    assert run(scripts.remove_file(str(target), state_dir=str(state))).returncode == 0
    assert target.read_bytes() == original
    info = target.stat()
    assert (oct(info.st_mode & 0o777), info.st_uid, info.st_gid) == ("0o644", 4321, 4322)
    assert [p.name for p in target.parent.iterdir()] == ["glance-api.conf"]  # no temporary left
    assert not saved.exists()
    # A delete run again (an interrupted destroy) converges: the file stays as the package left it.
    assert run(scripts.remove_file(str(target), state_dir=str(state))).returncode == 0
    assert target.read_bytes() == original
    # A later deploy saves it anew.
    assert run(write, stdin="# Managed by glance-pulumi: three\n").returncode == 0
    assert saved.read_bytes() == original


def test_a_file_an_older_version_of_the_stack_wrote_is_not_taken_for_the_original(tmp_path: Path) -> None:
    target = tmp_path / "glance-api.conf"
    target.write_text("# Managed by glance-pulumi: edit the stack config, not this file.\n[DEFAULT]\n")
    state = tmp_path / "state"
    assert run(scripts.write_file(str(target), keep_original=True, state_dir=str(state)), stdin="new\n").returncode == 0
    assert run(scripts.remove_file(str(target), state_dir=str(state))).returncode == 0
    assert not target.exists()


def test_directories_the_stack_made_go_only_once_empty(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    conf, keyring = tmp_path / "ceph" / "glance-pulumi" / "a.conf", tmp_path / "ceph" / "glance-pulumi" / "a.keyring"
    for path in (conf, keyring):
        assert run(scripts.write_file(str(path), state_dir=state), stdin="x\n").returncode == 0
    assert oct((tmp_path / "ceph").stat().st_mode & 0o777) == "0o755"
    assert run(scripts.remove_file(str(conf), state_dir=state)).returncode == 0
    assert [p.name for p in keyring.parent.iterdir()] == ["a.keyring"]
    (tmp_path / "ceph" / "ceph.conf").write_text("another Ceph client's\n")
    assert run(scripts.remove_file(str(keyring), state_dir=state)).returncode == 0
    assert [p.name for p in (tmp_path / "ceph").iterdir()] == ["ceph.conf"]


def test_image_api_version_is_added_once_and_removed(tmp_path: Path) -> None:
    openrc = tmp_path / "admin-openrc.sh"
    openrc.write_text("export OS_USERNAME=admin\n")
    files = [str(openrc), str(tmp_path / "demo-openrc.sh")]
    for _ in range(2):
        assert run(scripts.add_image_api_version(files)).returncode == 0
    assert openrc.read_text() == "export OS_USERNAME=admin\nexport OS_IMAGE_API_VERSION=2\n"
    assert run(scripts.remove_image_api_version(files)).returncode == 0
    assert openrc.read_text() == "export OS_USERNAME=admin\n"


class Host:
    """A fake Debian host: dpkg-query, apt-get, apt-mark and dpkg over a list of installed packages.

    apt-get install also installs the dependencies in `deps` (as automatically installed);
    `apt-get -s autoremove` names the automatically installed packages that no package in
    `needed` depends on; purge removes. With `kill_install`, the first install is killed (with
    the script running it) after its first package, like a lost runner."""

    def __init__(
        self, tmp_path: Path, installed: list[str], deps: dict[str, list[str]], auto: tuple[str, ...] = ()
    ) -> None:
        self.dir = tmp_path / "host"
        self.bin = self.dir / "bin"
        self.bin.mkdir(parents=True)
        self.state = str(self.dir / "state")
        self.log = self.dir / "calls.log"
        self.status = self.dir / "status"
        self.status.write_text("".join(f"{p}\n" for p in installed))
        (self.dir / "auto").write_text("".join(f"{p}\n" for p in auto))
        (self.dir / "needed").write_text("")
        (self.dir / "deps").write_text("".join(f"{p} {' '.join(d)}\n" for p, d in deps.items()))
        w = self.dir
        tools = {
            "dpkg": f'echo "dpkg $*" >> {w}/calls.log',
            "dpkg-query": f'echo "dpkg-query" >> {w}/calls.log\necho "not-installed ghost"\n'
            f'echo "config-files removed-before"\nsed "s/^/installed /" {w}/status',
            "apt-mark": f'echo "apt-mark $*" >> {w}/calls.log\nshift\nfor p; do echo "$p" >> {w}/auto; done',
            "apt-get": f"""echo "apt-get $*" >> {w}/calls.log
sim=; cmd=
while [ $# -gt 0 ]; do
  case "$1" in
    -o) shift 2 ;;
    -s) sim=1; shift ;;
    -y) shift ;;
    install|purge|update|autoremove) cmd=$1; shift; break ;;
    *) shift ;;
  esac
done
case "$cmd" in
  install)
    for p; do
      case "$p" in -*) continue ;; esac
      grep -qxF "$p" {w}/status || echo "$p" >> {w}/status
      for d in $(awk -v p="$p" '$1 == p {{ $1 = ""; print }}' {w}/deps); do
        grep -qxF "$d" {w}/status || {{ echo "$d" >> {w}/status; echo "$d" >> {w}/auto; }}
      done
      if [ -e {w}/kill-install ]; then rm {w}/kill-install; kill -9 $PPID; exit 137; fi
    done ;;
  autoremove)
    [ -n "$sim" ] || exit 1
    for p in $(cat {w}/auto); do
      if grep -qxF "$p" {w}/status && ! grep -qxF "$p" {w}/needed; then echo "Remv $p [1.0]"; fi
    done ;;
  purge)
    for p; do
      case "$p" in -*) continue ;; esac
      grep -vxF -- "$p" {w}/status > {w}/status.tmp || true; mv {w}/status.tmp {w}/status
    done ;;
esac
exit 0
""",
        }
        for tool, body in tools.items():
            (self.bin / tool).write_text(f"#!/bin/sh\n{body}\n")
            (self.bin / tool).chmod(0o755)

    def installed(self) -> set[str]:
        return set(self.status.read_text().split())

    def calls(self, tool: str) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.split()[0] == tool]

    def recorded(self) -> set[str]:
        return set(Path(self.state, "installed-packages").read_text().split())

    def install(self, engine: DbEngine = "mysql") -> subprocess.CompletedProcess[str]:
        return run(scripts.install(DEBIAN, engine, state_dir=self.state), path_dir=self.bin)

    def uninstall(self) -> subprocess.CompletedProcess[str]:
        return run(scripts.uninstall(DEBIAN, state_dir=self.state), path_dir=self.bin)


GLANCE_DEPS = {"glance-api": ["glance-common", "python3-glance"]}
BASE = ["base-files", "keystone", "python3-pymysql"]


def test_install_finishes_an_interrupted_install_then_waits_for_the_lock(tmp_path: Path) -> None:
    host = Host(tmp_path, BASE, GLANCE_DEPS)
    assert host.install("postgresql").returncode == 0
    assert host.calls("dpkg") + host.calls("apt-get") == [
        "dpkg --configure -a",
        "apt-get -o DPkg::Lock::Timeout=300 install -y glance-api python3-psycopg2",
    ]


@pytest.mark.parametrize(("exits", "calls", "installs"), [((2, 2, 0), 3, True), ((1,), 1, False)])
def test_install_waits_for_the_dpkg_lock_but_not_past_a_real_error(
    tmp_path: Path, exits: tuple[int, ...], calls: int, installs: bool
) -> None:
    """After a killed `up` its apt-get may still run on the host: dpkg --configure -a exits 2
    (the lock) until it is done, and the re-run waits; any other failure stops it."""
    host = Host(tmp_path, BASE, GLANCE_DEPS)
    codes = host.dir / "dpkg-exits"
    codes.write_text("".join(f"{code}\n" for code in exits))
    (host.bin / "dpkg").write_text(
        f'#!/bin/sh\necho "dpkg $*" >> {host.log}\ncode=$(head -n 1 {codes})\nsed -i 1d {codes}\nexit ${{code:-0}}\n'
    )
    result = host.install()
    assert (result.returncode == 0) == installs, result.stderr
    assert host.calls("dpkg") == ["dpkg --configure -a"] * calls
    assert ("glance-api" in host.installed()) == installs


def test_install_refreshes_package_lists_only_when_the_cached_ones_fail(tmp_path: Path) -> None:
    host = Host(tmp_path, BASE, GLANCE_DEPS)
    real = host.bin / "apt-get"
    real.rename(host.bin / "apt-get.real")
    real.write_text(
        f'#!/bin/sh\nif [ ! -e {host.dir}/failed ]; then touch {host.dir}/failed; echo "apt-get $*" >> {host.log}; '
        f'exit 100; fi\nexec {host.bin}/apt-get.real "$@"\n'
    )
    real.chmod(0o755)
    assert host.install().returncode == 0
    assert host.calls("apt-get") == [
        "apt-get -o DPkg::Lock::Timeout=300 install -y glance-api python3-pymysql",
        "apt-get -o DPkg::Lock::Timeout=300 update",
        "apt-get -o DPkg::Lock::Timeout=300 install -y glance-api python3-pymysql",
    ]


def test_install_records_what_it_brought_and_uninstall_purges_only_that(tmp_path: Path) -> None:
    host = Host(tmp_path, [*BASE, "old-library"], GLANCE_DEPS, auto=("old-library",))
    for _ in range(2):  # a re-run brings nothing new and forgets nothing
        result = host.install()
        assert result.returncode == 0, result.stderr
        assert host.recorded() == {"glance-api", "glance-common", "python3-glance"}
    assert "glance-api" in result.stdout  # what the step reports
    assert oct(Path(host.state).stat().st_mode & 0o777) == "0o700"
    result = host.uninstall()
    assert result.returncode == 0, result.stderr
    # Back to what was there: python3-pymysql (there before) and old-library (unneeded, but not ours) stay.
    assert host.installed() == {*BASE, "old-library"}
    assert (
        host.calls("apt-get")[-1]
        == "apt-get -o DPkg::Lock::Timeout=300 purge -y glance-api glance-common python3-glance"
    )
    assert not Path(host.state).exists()
    # Uninstalling again converges: nothing is recorded, nothing is removed.
    assert host.uninstall().returncode == 0 and host.installed() == {*BASE, "old-library"}


def test_sudo_stays_even_when_the_stack_brought_it(tmp_path: Path) -> None:
    """Debian's sudo refuses to be removed from a host without a root password (and an
    administrator may have come to rely on it): destroy leaves it."""
    host = Host(tmp_path, BASE, {"glance-api": ["python3-oslo.rootwrap", "sudo"]})
    assert host.install().returncode == 0
    assert host.recorded() == {"glance-api", "python3-oslo.rootwrap", "sudo"}
    assert host.uninstall().returncode == 0
    assert host.installed() == {*BASE, "sudo"}
    assert "sudo" not in host.calls("apt-mark")[0].split()


def test_packages_installed_before_the_stack_stay(tmp_path: Path) -> None:
    host = Host(tmp_path, [*BASE, "glance-api", "glance-common", "python3-glance"], GLANCE_DEPS)
    assert host.install("postgresql").returncode == 0
    assert host.recorded() == {"python3-psycopg2"}
    assert host.uninstall().returncode == 0
    assert host.installed() == {*BASE, "glance-api", "glance-common", "python3-glance"}


def test_an_interrupted_install_still_knows_its_packages(tmp_path: Path) -> None:
    host = Host(tmp_path, BASE, {"glance-api": ["glance-common"], "python3-psycopg2": []})
    (host.dir / "kill-install").touch()
    killed = host.install("postgresql")
    assert killed.returncode != 0 and "glance-common" in host.installed()
    assert not Path(host.state, "installed-packages").exists()
    assert host.install("postgresql").returncode == 0  # the re-run after `pulumi cancel`
    assert host.recorded() == {"glance-api", "glance-common", "python3-psycopg2"}
    assert not Path(host.state, "packages-before").exists()


def test_destroy_after_an_interrupted_install_removes_what_it_brought(tmp_path: Path) -> None:
    host = Host(tmp_path, BASE, GLANCE_DEPS)
    (host.dir / "kill-install").touch()
    assert host.install().returncode != 0
    assert host.uninstall().returncode == 0
    assert host.installed() == set(BASE)


def test_what_another_package_came_to_need_stays(tmp_path: Path) -> None:
    host = Host(tmp_path, BASE, GLANCE_DEPS)
    assert host.install().returncode == 0
    (host.dir / "needed").write_text("python3-glance\n")  # e.g. a glance client installed since
    assert host.uninstall().returncode == 0
    assert host.installed() == {*BASE, "python3-glance"}


def test_a_destroy_on_a_host_with_glance_before_leaves_it_as_it_was(tmp_path: Path) -> None:
    host = Host(tmp_path, [*BASE, "glance-api", "glance-common", "python3-glance"], GLANCE_DEPS)
    conf = host.dir / "etc" / "glance-api.conf"
    conf.parent.mkdir()
    conf.write_text("# the package's\n")
    steps = [  # create, delete, stdin: the node's steps in order
        (scripts.install(DEBIAN, "mysql", state_dir=host.state), scripts.uninstall(DEBIAN, state_dir=host.state), ""),
        (
            scripts.write_file(str(conf), keep_original=True, state_dir=host.state),
            scripts.remove_file(str(conf), state_dir=host.state),
            "# Managed by glance-pulumi\n",
        ),
    ]
    for create, _, stdin in steps:
        assert run(create, stdin=stdin, path_dir=host.bin).returncode == 0
    for _, delete, _ in reversed(steps):
        assert run(delete, path_dir=host.bin).returncode == 0
    assert conf.read_text() == "# the package's\n"
    assert host.installed() == {*BASE, "glance-api", "glance-common", "python3-glance"}
    assert not host.calls("apt-mark") and not Path(host.state).exists()


def readiness(params: dict[str, object], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return run(scripts.run_python(script_source("readiness")), stdin=json.dumps(params), timeout=timeout)


def readiness_params(url: str, password: str, timeout: float) -> dict[str, object]:
    return {
        "glance_url": url,
        "auth_url": url,
        "user": "glance",
        "password": password,
        "domain_id": "default",
        "project": "service",
        "timeout": timeout,
    }


def test_readiness_waits_for_health_then_an_authenticated_call() -> None:
    cloud = FakeCloud(password="p$w@rd", unhealthy_polls=2)
    with serve(cloud) as url:
        result = readiness(readiness_params(url, "p$w@rd", 20))
    assert result.returncode == 0, result.stderr
    paths = [path for _, path, _ in cloud.requests]
    assert paths.count("/healthcheck") == 3
    assert paths[-2:] == ["/v3/auth/tokens", "/v2/images?limit=1"]
    token_request = next(body for method, path, body in cloud.requests if method == "POST")
    assert token_request["auth"]["scope"]["project"]["name"] == "service"
    assert "p$w@rd" not in result.stdout + result.stderr


def test_readiness_takes_a_drained_host_as_up_and_still_checks_the_authenticated_call() -> None:
    cloud = FakeCloud(password="pw", drained=True)
    with serve(cloud) as url:
        result = readiness(readiness_params(url, "pw", 5))
    assert result.returncode == 0, result.stderr
    assert [path for _, path, _ in cloud.requests][-2:] == ["/v3/auth/tokens", "/v2/images?limit=1"]


def test_readiness_fails_when_keystone_rejects_glance_although_health_is_ok() -> None:
    cloud = FakeCloud(password="right", reject_tokens=True)
    with serve(cloud) as url:
        result = readiness(readiness_params(url, "right", 3))
    assert result.returncode != 0
    assert "glance not ready: authenticated image list" in result.stderr


def test_system_reader_role_is_granted_and_revoked() -> None:
    cloud = FakeCloud(password="admin-pw")
    params = {
        "auth_url": "",
        "admin_user": "admin",
        "admin_password": "admin-pw",
        "admin_project": "admin",
        "domain_id": "default",
        "user_id": "limits-user-id",
        "role": "reader",
    }
    source = script_source("keystone_system_role")
    with serve(cloud) as url:
        params["auth_url"] = f"{url}/v3"
        granted = run(scripts.run_python(source, "grant"), stdin=json.dumps(params))
        assert granted.returncode == 0, granted.stderr
        assert cloud.system_grants == {("limits-user-id", "reader-id")}
        for _ in range(2):  # revoking twice converges: the second finds nothing to undo
            revoked = run(scripts.run_python(source, "revoke"), stdin=json.dumps(params))
            assert revoked.returncode == 0, revoked.stderr
    assert cloud.system_grants == set()


def test_drain_marks_only_a_serving_host_and_undrain_clears_the_mark(tmp_path: Path, fake_systemctl: Path) -> None:
    flag = tmp_path / "healthcheck_disable"
    release = dataclasses.replace(ZED, healthcheck_disable_file=str(flag))
    assert run(scripts.drain(release, ["glance-api.service"], 0), path_dir=fake_systemctl).returncode == 0
    assert flag.exists()  # the fake systemctl says every unit is active
    assert run(scripts.undrain(release, 0)).returncode == 0
    assert not flag.exists()
    (fake_systemctl / "systemctl").write_text("#!/bin/sh\nexit 3\n")  # inactive: the first deploy
    assert run(scripts.drain(release, ["glance-api.service"], 0), path_dir=fake_systemctl).returncode == 0
    assert not flag.exists()
