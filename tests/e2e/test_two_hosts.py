"""Glance on two API hosts behind the lab's load balancer (lab.cluster), checked from outside.

The stack lab-two-hosts: both controllers run glance-api, Swift on the first is the only
store, the endpoints are HAProxy's URL. With the real engine and the official plugins
(TestTwoHostsWithTheEngine), and with the tests' stand-in executor (TestTwoHostsApplied).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.cluster import Cluster
from lab.stacks import PulumiCli, lab_image_file, program_config
from tests.e2e import checks
from tests.e2e.conftest import Timer
from tests.e2e.test_lab_applied import AppliedStack
from tests.e2e.test_lab_stacks import EngineStack, engine_stack

STACK = "lab-two-hosts"


@pytest.fixture(scope="class")
def two_hosts(cluster_host: Cluster, pulumi_cli: PulumiCli) -> Iterator[EngineStack]:
    yield from engine_stack(STACK, cluster_host, pulumi_cli, {})


@pytest.mark.e2e
class TestTwoHostsWithTheEngine:
    def test_up_from_nothing(self, two_hosts: EngineStack) -> None:
        with Timer(f"engine {STACK}: up"), checks.ArgvWatcher(two_hosts.target):
            two_hosts.cli("up", "--yes", "--skip-preview")
        checks.assert_units_and_config_ownership(two_hosts.target)

    def test_glance_user_authenticates_through_keystone(self, two_hosts: EngineStack) -> None:
        checks.assert_glance_user_authenticates(two_hosts.target)

    def test_image_is_active_with_its_bytes_in_swift(self, two_hosts: EngineStack) -> None:
        checks.assert_image_active_with_bytes_in_store(two_hosts.target)

    def test_endpoints_are_the_load_balancer(self, two_hosts: EngineStack) -> None:
        checks.assert_keystone_objects(two_hosts.target)

    def test_image_uploaded_through_one_host_downloads_through_the_other(self, two_hosts: EngineStack) -> None:
        checks.assert_image_crosses_hosts(two_hosts.target)

    def test_endpoint_serves_with_either_host_down(self, two_hosts: EngineStack) -> None:
        checks.assert_endpoint_serves_with_one_host_down(two_hosts.target)

    def test_second_preview_changes_nothing(self, two_hosts: EngineStack) -> None:
        two_hosts.cli("preview", "--expect-no-changes")

    def test_option_change_restarts_the_hosts_one_after_another(self, two_hosts: EngineStack) -> None:
        target = two_hosts.target
        before = [checks.unit_down_interval(target, host) for host in target.hosts]
        # An option glance-api reads only at start (debug it reloads: tests/e2e/test_day2.py).
        option = ("glance:apiOptions[0]", "DEFAULT.image_size_cap=1099511627776")
        two_hosts.pulumi.run("config", "set", "--path", "--stack", STACK, *option)
        with Timer(f"engine {STACK}: rolling update of one option"), checks.EndpointPoller(target) as poller:
            two_hosts.cli("up", "--yes", "--skip-preview")
        after = [checks.unit_down_interval(target, host) for host in target.hosts]
        assert all(now != then for now, then in zip(after, before, strict=True)), "a host was not restarted"
        (_, first_back), (second_stopped, _) = after
        # glance-api was down on one host at a time: the second stopped after the first was back.
        assert first_back < second_stopped, after
        assert poller.calls > 20 and poller.failures == [], poller.failures
        for host in target.hosts:
            conf = target.ssh(f"cat {checks.API_CONF}", host=host)
            assert "image_size_cap = 1099511627776" in conf, host

    def test_no_secret_in_state_output_or_controller_argv(self, two_hosts: EngineStack) -> None:
        exported = two_hosts.cli("stack", "export")
        places = {"stack export": exported, "engine output": "\n".join(two_hosts.outputs)}
        checks.assert_no_secret_in(two_hosts.target, places)

    def test_destroy_leaves_nothing_on_either_host(self, two_hosts: EngineStack) -> None:
        with Timer(f"engine {STACK}: destroy"):
            two_hosts.cli("destroy", "--yes", "--skip-preview")
        checks.assert_nothing_left(two_hosts.target)


@pytest.fixture(scope="class")
def applied(cluster_host: Cluster) -> Iterator[AppliedStack]:
    stack = AppliedStack(checks.Target(STACK, cluster_host))
    yield stack
    stack.destroy()


@pytest.mark.e2e
class TestTwoHostsApplied:
    def test_apply_from_nothing(self, applied: AppliedStack) -> None:
        assert program_config(STACK, applied.target.lab.connection, lab_image_file())["apiHosts"] == [
            host["address"] for host in applied.target.lab.connection["hosts"]
        ]
        with Timer(f"applied {STACK}: create"):
            executor = applied.apply()
        assert set(executor.operations.values()) == {"create", "same"}
        checks.assert_units_and_config_ownership(applied.target)

    def test_image_is_active_with_its_bytes_in_swift(self, applied: AppliedStack) -> None:
        checks.assert_image_active_with_bytes_in_store(applied.target)

    def test_image_uploaded_through_one_host_downloads_through_the_other(self, applied: AppliedStack) -> None:
        checks.assert_image_crosses_hosts(applied.target)

    def test_destroy_leaves_nothing_on_either_host(self, applied: AppliedStack) -> None:
        applied.destroy()
        checks.assert_nothing_left(applied.target)
