"""The real engine, with the official plugins, on the lab: destroy removes only what the stack made.

Before the stack, the controller already has Debian's glance-api (installed as an operator
would, `apt-get install -y glance-api`) and a MySQL account glance@'%'. The stack lab-mariadb
is deployed over them and destroyed: glance-api is still installed, /etc/glance/glance-api.conf
is byte for byte the file the package left (owner and mode too), glance@'%' still exists,
and what the stack made (glance@localhost, its database, its drop-in) is gone. Its first `up`
has a wrong glance:cirrosChecksum: the image step fails naming both checksums, and Glance
holds no image. At the end the
packages installed here are purged again, so later suites find the controller as they expect.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lab.controller import Lab
from lab.stacks import PulumiCli, lab_image_file
from tests.e2e import checks
from tests.e2e.conftest import Timer
from tests.e2e.test_lab_stacks import EngineStack, engine_stack

STACK = "lab-mariadb"
WRONG_SHA256 = "0" * 64
PACKAGE = "glance-api"
# What dpkg has installed, one package a line.
INSTALLED = "dpkg-query -W -f '${db:Status-Status} ${Package}\\n' | awk '$1 == \"installed\" { print $2 }'"
# The conffile's bytes, and its owner and mode.
CONF_IDENTITY = f"sha256sum {checks.API_CONF} | cut -d' ' -f1; stat -c '%U:%G %a' {checks.API_CONF}"
PRE_EXISTING_ACCOUNT = "'glance'@'%'"
STATE_DIR = "/var/lib/glance-pulumi"
APT = "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300"


@dataclass(frozen=True)
class Before:
    """The controller before the stack."""

    packages: set[str]  # installed before glance-api was
    glance_packages: set[str]  # what installing glance-api brought
    conf: str  # CONF_IDENTITY's output


def installed(lab: Lab) -> set[str]:
    return set(lab.ssh(INSTALLED).stdout.split())


def mysql(lab: Lab, sql: str) -> str:
    return lab.ssh("mysql -N -B", input=sql).stdout


def accounts(lab: Lab) -> set[str]:
    return set(mysql(lab, "SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User = 'glance';").split())


@pytest.fixture(scope="class")
def before(lab_host: Lab) -> Iterator[Before]:
    packages = installed(lab_host)
    assert PACKAGE not in packages, "the lab should start without Glance"
    assert not accounts(lab_host), "the lab should start without a glance account"
    try:
        with Timer(f"engine {STACK} (destroy leaves): apt-get install {PACKAGE}"):
            lab_host.ssh(f"{APT} install -y {PACKAGE}", timeout=900)
        mysql(lab_host, f"CREATE USER {PRE_EXISTING_ACCOUNT} IDENTIFIED BY 'there before the stack';")
        yield Before(packages, installed(lab_host) - packages, lab_host.ssh(CONF_IDENTITY).stdout)
    finally:
        # Later suites expect a controller without Glance: purge what this test installed
        # (sudo too, which glance-api's dependencies bring: root logs in by key here).
        brought = sorted(installed(lab_host) - packages)
        if brought:
            lab_host.ssh(f"SUDO_FORCE_REMOVE=yes {APT} purge -y {' '.join(brought)}", timeout=900)
        mysql(lab_host, f"DROP USER IF EXISTS {PRE_EXISTING_ACCOUNT};")
        lab_host.ssh(f"rm -rf {STATE_DIR}")


@pytest.fixture(scope="class")
def deployed(before: Before, lab_host: Lab, pulumi_cli: PulumiCli) -> Iterator[EngineStack]:
    # Depends on `before`: set up after it, torn down (destroyed, stack removed) before its cleanup.
    yield from engine_stack(STACK, lab_host, pulumi_cli, {})


@pytest.mark.e2e
class TestDestroyLeavesWhatWasThere:
    def test_a_wrong_checksum_stops_the_image_step_before_any_upload(self, deployed: EngineStack) -> None:
        deployed.set_config("glance:cirrosChecksum", WRONG_SHA256)
        # Everything else still deploys, so Glance answers below: only the image waits for the check.
        deployed.cli("up", "--yes", "--skip-preview", "--continue-on-error", expect_failure=True)
        refusal = deployed.outputs[-1]
        assert "glance-image-source" in refusal and "checksum mismatch" in refusal, refusal
        actual = hashlib.sha256(lab_image_file().read_bytes()).hexdigest()
        assert WRONG_SHA256 in refusal and actual in refusal, refusal
        # Glance was deployed and answers, and holds no image: nothing was uploaded.
        images = deployed.target.admin().get(f"{deployed.target.glance_url}/v2/images")["images"]
        assert images == [], images
        deployed.set_config("glance:cirrosChecksum", actual)

    def test_up_over_a_preinstalled_glance(self, before: Before, deployed: EngineStack) -> None:
        assert PACKAGE in before.glance_packages
        with Timer(f"engine {STACK} (destroy leaves): up"):
            deployed.cli("up", "--yes", "--skip-preview")
        checks.assert_units_and_config_ownership(deployed.target)
        checks.assert_glance_user_authenticates(deployed.target)
        lab = deployed.target.lab
        assert isinstance(lab, Lab)
        # The install step brought none of the Glance packages, and says so on the host.
        recorded = set(lab.ssh(f"cat {STATE_DIR}/installed-packages").stdout.split())
        assert not recorded & before.glance_packages, recorded
        # The package's glance-api.conf is kept, root's only, for destroy to put back.
        original = f"{STATE_DIR}/originals{checks.API_CONF}"
        assert lab.ssh(f"sha256sum {original} | cut -d' ' -f1").stdout == before.conf.splitlines(keepends=True)[0]
        assert lab.ssh(f"stat -c '%U:%G %a' {STATE_DIR}").stdout.strip() == "root:root 700"
        # Both accounts in use; only the one the stack created is recorded as its own.
        assert accounts(lab) == {"glance@%", "glance@localhost"}

    def test_destroy_leaves_what_was_there_before(self, before: Before, deployed: EngineStack) -> None:
        with Timer(f"engine {STACK} (destroy leaves): destroy"):
            deployed.cli("destroy", "--yes", "--skip-preview")
        lab = deployed.target.lab
        assert isinstance(lab, Lab)
        status = lab.ssh(f"dpkg-query -W -f '${{Status}}' {PACKAGE}").stdout
        assert status == "install ok installed", status
        assert before.glance_packages <= installed(lab)
        assert lab.ssh(CONF_IDENTITY).stdout == before.conf
        # What the stack made is gone: its drop-in, its account, its database, its Keystone user.
        assert lab.ssh(f"test -e {checks.CREDENTIALS_CONF}", check=False).returncode != 0
        assert accounts(lab) == {"glance@%"}
        assert mysql(lab, "SHOW DATABASES LIKE 'glance';").strip() == ""
        assert deployed.target.admin().keystone("/users?name=glance")["users"] == []
        assert lab.ssh(f"test -e {STATE_DIR}", check=False).returncode != 0
