"""Several Glance API hosts behind one endpoint: when they are allowed, and how they start."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.settings import ConfigError
from tests.unit.harness import TEST_SECRETS, Deployment, pinned, plain, run_program, run_stack, stack_config

HOSTS = ["10.0.0.11", "10.0.0.12"]
LB = "https://glance.example:9292"
SWIFT_ONLY = [{"id": "objects", "type": "swift", "createContainer": True}]


def two_hosts(
    deployment: Deployment | None = None, versions: dict[str, str] | None = None, **overrides: Any
) -> Deployment:
    """Stack debian-swift on two hosts behind LB, with Swift as the only store (`versions`: what
    the hosts answer about their Glance version, see harness.holding)."""
    config = {**stack_config("debian-swift"), **TEST_SECRETS, **pinned(*HOSTS), "apiHosts": HOSTS, "publicUrl": LB}
    config |= {"tlsTermination": "loadBalancer"}  # the load balancer ends TLS
    config |= {"internalUrl": "", "adminUrl": ""}  # unset: they follow publicUrl
    return run_program({**config, "stores": SWIFT_ONLY, "defaultStore": "", **overrides}, deployment, versions=versions)


INVALID: list[tuple[str, dict[str, Any], str]] = [
    (
        "the guides' file store",
        {"stores": [], "defaultStore": ""},
        "glance:apiHosts 2 hosts would each keep images in their own file store (imageStorePath)",
    ),
    (
        "a file store beside the shared default",
        {"stores": [*SWIFT_ONLY, {"id": "local", "type": "file", "path": "/srv/images"}], "defaultStore": "objects"},
        "glance:apiHosts 2 hosts, but stores[1] (local) is a file store on each host's own disk",
    ),
    ("no load balancer", {"publicUrl": ""}, "glance:publicUrl required with 2 apiHosts"),
    ("a host twice", {"apiHosts": [HOSTS[0], HOSTS[0]]}, "glance:apiHosts a host is listed twice"),
]


@pytest.mark.parametrize(("change", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_several_hosts_need_stores_they_all_reach(change: dict[str, Any], message: str) -> None:
    deployment = Deployment()
    with pytest.raises(ConfigError) as refused:
        two_hosts(deployment, **change)
    assert message in str(refused.value)
    assert deployment.registrations == []


def test_a_shared_file_store_is_the_operators_word() -> None:
    shared = [{"id": "nfs", "type": "file", "path": "/mnt/glance", "shared": True}]
    deployment = two_hosts(stores=shared, defaultStore="nfs")
    assert deployment.named("glance-2-image-store-nfs").protect


def test_every_host_gets_the_node_steps_on_its_own_connection() -> None:
    deployment = two_hosts()
    for node, host in (("glance", HOSTS[0]), ("glance-2", HOSTS[1])):
        for step in ("install", "config-glance-api", "config-credentials", "ownership", "units", "restart", "ready"):
            connection = plain(deployment.named(f"{node}-{step}").inputs["connection"])
            assert connection["host"] == host, (node, step)


def test_db_sync_runs_once_before_any_host_starts() -> None:
    deployment = two_hosts()
    assert [r.name for r in deployment.registrations if r.name.endswith("db-sync")] == ["glance-db-sync"]
    for node in ("glance", "glance-2"):
        assert deployment.depends_on(f"{node}-units", "glance-db-sync")


def test_hosts_restart_one_after_another_drained() -> None:
    deployment = two_hosts()
    # The second host drains only once the first answers again and is back in the balancer.
    assert deployment.depends_on("glance-undrain", "glance-ready")
    assert deployment.depends_on("glance-2-drain", "glance-undrain")
    assert not deployment.depends_on("glance-restart", "glance-2-ready")
    for node in ("glance", "glance-2"):
        # Each host restarts (and gets new packages) only once drained.
        assert deployment.depends_on(f"{node}-restart", f"{node}-drain")
        assert deployment.depends_on(f"{node}-install", f"{node}-drain")
    # An option glance-api reads only at start (components/reload.py) restarts the hosts.
    before, after = two_hosts(), two_hosts(apiOptions=["DEFAULT.image_size_cap=1099511627776"])
    for node in ("glance", "glance-2"):
        for step in ("drain", "restart"):
            name = f"{node}-{step}"
            assert before.named(name).inputs["triggers"] != after.named(name).inputs["triggers"]


def test_each_gate_checks_its_host_and_the_image_waits_for_all() -> None:
    deployment = two_hosts()
    for node, host in (("glance", HOSTS[0]), ("glance-2", HOSTS[1])):
        params = json.loads(plain(deployment.named(f"{node}-ready").inputs["stdin"]))
        assert params["glance_url"] == f"http://{host}:9292"
        # The load balancer's health checks (loadBalancerCheckSeconds) see the host go and come back.
        assert "sleep 3\n" in deployment.named(f"{node}-drain").inputs["create"]
        assert "sleep 3\n" in deployment.named(f"{node}-undrain").inputs["create"]
    for gate in ("glance-ready", "glance-2-ready"):
        assert deployment.depends_on("glance-image", gate)


def test_endpoints_are_the_load_balancer() -> None:
    deployment = two_hosts()
    urls = {
        plain(r.inputs)["interface"]: plain(r.inputs)["url"]
        for r in deployment.registrations
        if r.name.startswith("glance-endpoint")
    }
    assert urls == {"public": LB, "internal": LB, "admin": LB}


def test_one_host_keeps_its_names_and_checks_the_internal_endpoint() -> None:
    deployment = run_stack("debian", internalUrl="http://glance-internal:9292")
    assert not [r for r in deployment.registrations if r.name.startswith("glance-2-")]
    params = json.loads(plain(deployment.named("glance-ready").inputs["stdin"]))
    assert params["glance_url"] == "http://glance-internal:9292"
    # No load balancer to wait for.
    assert "sleep 0\n" in deployment.named("glance-drain").inputs["create"]
    assert "sleep 0\n" in deployment.named("glance-undrain").inputs["create"]
