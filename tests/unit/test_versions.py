"""Pinned package versions (glance:packageVersion): what the steps do when the pin is set or moves."""

from __future__ import annotations

import pytest

from components.installed_versions import found_version
from components.settings import ConfigError
from tests.unit.harness import run_stack
from tests.unit.test_api_hosts import HOSTS, two_hosts
from tests.unit.test_config_delivery import changed

OLD = "2:25.1.0-2+deb12u3"
NEW = "2:25.1.0-2+deb12u5"
NODES = ("glance", "glance-2")


@pytest.mark.parametrize(
    ("stack", "version", "example"),
    [("debian", "25.1.0 (u5)", "2:25.1.0-2+deb12u5"), ("rhel", "25.1.0", "25.1.0-1.el9"), ("debian", "=1", "")],
)
def test_a_version_the_package_manager_would_not_read_is_refused(stack: str, version: str, example: str) -> None:
    with pytest.raises(ConfigError) as refused:
        run_stack(stack, packageVersion=version)
    assert f"glance:packageVersion {version!r} is not a {stack} package version" in str(refused.value)
    assert example in str(refused.value)


def test_unpinned_installs_what_apt_resolves_and_takes_no_dump() -> None:
    deployment = run_stack("debian")
    assert "glance-api=" not in deployment.named("glance-install").inputs["create"]
    names = {r.name for r in deployment.registrations}
    assert not names & {"glance-db-dump", "glance-db-contract"}
    assert "database_dump" not in deployment.outputs


def test_pinned_install_names_each_glance_package_at_the_version() -> None:
    script = run_stack("debian", packageVersion=NEW).named("glance-install").inputs["create"]
    assert f"glance-api={NEW} glance-common={NEW} python3-glance={NEW} python3-pymysql" in script
    assert "--allow-downgrades" in script
    # The package's own restart is refused while it installs; the restart step restarts the drained host.
    assert "exit 101" in script and "policy-rc.d" in script
    assert f'[ "$now" = {NEW} ]' in script


def test_a_pin_change_rolls_every_host_and_the_schema_and_names_both_versions() -> None:
    before, after = two_hosts(packageVersion=OLD), two_hosts(packageVersion=NEW)
    steps = changed(before, after)
    for node in NODES:
        assert {f"{node}-drain", f"{node}-install", f"{node}-restart"} <= steps, steps
        # What a preview's diff of the install step shows: the old version goes, the new one comes.
        assert f"glance-api={OLD}" in before.named(f"{node}-install").inputs["create"]
        assert f"glance-api={NEW}" in after.named(f"{node}-install").inputs["create"]
    assert {"glance-db-dump", "glance-db-sync", "glance-db-contract"} <= steps
    # The config files do not change, so nothing else is rewritten.
    assert not {name for name in steps if "-config-" in name}
    assert after.outputs["database_dump"] == "/var/backups/glance-pulumi/glance-before-2_25.1.0-2+deb12u5.sql"


def test_schema_moves_between_the_first_install_and_restart_contract_after_the_last() -> None:
    deployment = two_hosts(packageVersion=NEW)
    sync = deployment.named("glance-db-sync").inputs
    assert sync["stdin"] == NEW and "glance-manage $*" in sync["update"] and "db expand" in sync["update"]
    assert deployment.depends_on("glance-db-sync", "glance-db-dump")
    assert deployment.depends_on("glance-db-sync", "glance-install")
    assert deployment.depends_on("glance-restart", "glance-db-sync")
    assert deployment.depends_on("glance-db-contract", "glance-2-undrain")
    assert "db contract" in deployment.named("glance-db-contract").inputs["create"]
    dump = deployment.named("glance-db-dump")
    assert "stdin" in dump.secret_inputs  # the administrator's password
    assert "--databases glance" in dump.inputs["create"]


def test_liberty_moves_its_schema_with_db_sync() -> None:
    deployment = run_stack("clearlinux", packageVersion="31000")
    assert "glance-manage db_sync" in deployment.named("glance-db-sync").inputs["update"]
    assert "swupd update --version 31000" in deployment.named("glance-install").inputs["create"]
    assert "glance-db-contract" not in {r.name for r in deployment.registrations}


def test_a_host_changed_by_hand_is_drained_reinstalled_and_restarted_once() -> None:
    first, second = HOSTS
    # Both hosts went from OLD to NEW with the pin; the install recorded what it replaced.
    pinned = two_hosts(packageVersion=NEW, versions={first: f"{NEW}\n{OLD} #1\n", second: f"{NEW}\n{OLD} #1\n"})
    # Someone put the old version back on the second host by hand.
    drifted = two_hosts(packageVersion=NEW, versions={first: f"{NEW}\n{OLD} #1\n", second: f"{OLD}\n{OLD} #1\n"})
    steps = changed(pinned, drifted)
    assert steps == {"glance-2-drain", "glance-2-install", "glance-2-restart"}, steps
    assert f"besides the pin: {OLD} #2" in drifted.named("glance-2-install").inputs["create"]
    # Corrected: the host is at the pin and its install recorded OLD #2, so nothing moves again.
    corrected = two_hosts(packageVersion=NEW, versions={first: f"{NEW}\n{OLD} #1\n", second: f"{NEW}\n{OLD} #2\n"})
    assert changed(drifted, corrected) == set()


def test_found_version_numbers_each_departure_from_the_pin() -> None:
    assert found_version(OLD, "", NEW) == f"{OLD} #1"
    assert found_version(OLD, f"{OLD} #1", NEW) == f"{OLD} #2"
    assert found_version(NEW, f"{OLD} #2", NEW) == f"{OLD} #2"
    assert found_version("", "", NEW) == ""
    assert found_version(NEW, "", NEW) == ""
