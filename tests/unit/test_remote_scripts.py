"""The remote scripts, executed for real here: shell through bash, Python through python3."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from components import scripts
from components.profiles import DEBIAN
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


def test_config_is_written_atomically_from_stdin_and_private(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "glance" / "glance-api.conf"
    secret_text = "[database]\nconnection = mysql+pymysql://glance:s%24cret@db:3306/glance\n"
    result = run(scripts.write_file(str(target)), stdin=secret_text)
    assert result.returncode == 0, result.stderr
    assert target.read_text() == secret_text
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in target.parent.iterdir()] == ["glance-api.conf"]
    assert run(scripts.remove_files([str(target)])).returncode == 0
    assert not target.exists()


def test_image_api_version_is_added_once_and_removed(tmp_path: Path) -> None:
    openrc = tmp_path / "admin-openrc.sh"
    openrc.write_text("export OS_USERNAME=admin\n")
    files = [str(openrc), str(tmp_path / "demo-openrc.sh")]
    for _ in range(2):
        assert run(scripts.add_image_api_version(files)).returncode == 0
    assert openrc.read_text() == "export OS_USERNAME=admin\nexport OS_IMAGE_API_VERSION=2\n"
    assert run(scripts.remove_image_api_version(files)).returncode == 0
    assert openrc.read_text() == "export OS_USERNAME=admin\n"


def fake_tools(tmp_path: Path, failing: str = "") -> tuple[Path, Path]:
    """apt-get and dpkg that log their arguments; `failing` ones exit 100 the first time."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("apt-get", "dpkg"):
        fail_once = (
            f"if [ ! -e {tmp_path}/{tool}.failed ]; then touch {tmp_path}/{tool}.failed; exit 100; fi\n"
            if tool in failing
            else ""
        )
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n{fail_once}')
        (bin_dir / tool).chmod(0o755)
    return bin_dir, log


def test_install_finishes_an_interrupted_install_then_waits_for_the_lock(tmp_path: Path) -> None:
    bin_dir, log = fake_tools(tmp_path)
    assert run(scripts.install(DEBIAN, "postgresql"), path_dir=bin_dir).returncode == 0
    assert log.read_text().splitlines() == [
        "dpkg --configure -a",
        "apt-get -o DPkg::Lock::Timeout=300 install -y glance-api python3-psycopg2",
    ]


def test_install_refreshes_package_lists_only_when_the_cached_ones_fail(tmp_path: Path) -> None:
    bin_dir, log = fake_tools(tmp_path, failing="apt-get")
    assert run(scripts.install(DEBIAN, "mysql"), path_dir=bin_dir).returncode == 0
    assert log.read_text().splitlines()[1:] == [
        "apt-get -o DPkg::Lock::Timeout=300 install -y glance-api python3-pymysql",
        "apt-get -o DPkg::Lock::Timeout=300 update",
        "apt-get -o DPkg::Lock::Timeout=300 install -y glance-api python3-pymysql",
    ]


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
