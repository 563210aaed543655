"""GlanceService (components/service.py): one top-level component, the same resources under it, the same
stack outputs, and each resource still found at the URN a stack deployed before it knows; and the
example (examples/compose) that composes it with resources of its own, run under the mocks."""

from __future__ import annotations

import pytest

from components.service import TYPE
from tests.unit.harness import (
    ROOT,
    TEST_SECRETS,
    Deployment,
    Registration,
    run_program,
    run_stack,
    stack_config,
)

SERVICE_URN_PART = f"{TYPE}$"
# The components and providers __main__.py registered at the top of the stack before GlanceService.
FORMER_TOP_LEVEL = {
    "glance:passwords:ServicePasswords",
    "glance:database:GlanceDatabase",
    "glance:identity:GlanceIdentity",
    "glance:object_store:SwiftContainers",
    "glance:node:GlanceNode",
    "glance:image:CirrosImage",
    "pulumi:providers:openstack",
    "pulumi:providers:mysql",
    "pulumi:providers:postgresql",
}
COMPOSE = ROOT / "examples" / "compose" / "__main__.py"


@pytest.fixture(scope="module", params=["debian", "rhel-ceph", "debian-swift"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    return run_stack(request.param)


def service(deployment: Deployment) -> Registration:
    [found] = deployment.of_type(TYPE)
    return found


class Identities:
    """A resource's URN as the engine names it (its parents' types chained; the mocks keep only the
    last), and every URN its aliases let it answer to, as the engine derives them: an alias spec
    without a parent names a top-level resource; a child answers under each of its parent's names."""

    def __init__(self, deployment: Deployment) -> None:
        self.by_urn = {r.urn: r for r in deployment.registrations}

    def parent(self, resource: Registration) -> Registration | None:
        return self.by_urn.get(resource.parent)

    def chain(self, resource: Registration) -> str:
        parent = self.parent(resource)
        return resource.type if parent is None else f"{self.chain(parent)}${resource.type}"

    def names(self, resource: Registration) -> set[tuple[str, str]]:
        parent = self.parent(resource)
        parent_chains = {""} if parent is None else {chain for chain, _ in self.names(parent)}
        names = {(f"{chain}${resource.type}".lstrip("$"), resource.name) for chain in parent_chains}
        for alias in resource.aliases:
            assert "urn" not in alias and "parentUrn" not in alias, alias
            kind, name = alias.get("type", resource.type), alias.get("name", resource.name)
            if alias.get("noParent"):
                names.add((kind, name))
            else:
                names |= {(f"{chain}${kind}".lstrip("$"), name) for chain in parent_chains}
        return names


def test_one_top_level_component_holds_every_resource(deployment: Deployment) -> None:
    top = service(deployment)
    assert top.name == "glance" and top.parent.endswith("::pulumi:pulumi:Stack::glance-test")
    assert [r.name for r in deployment.registrations if r.parent == top.parent] == ["glance"]
    children = [r for r in deployment.registrations if r.parent == top.urn]
    assert {r.type for r in children} <= FORMER_TOP_LEVEL
    assert {"glance:node:GlanceNode", "glance:image:CirrosImage", "pulumi:providers:openstack"} <= {
        r.type for r in children
    }


def test_every_moved_child_keeps_the_urn_of_a_stack_deployed_before(deployment: Deployment) -> None:
    top = service(deployment)
    identities = Identities(deployment)
    for child in deployment.registrations:
        if child.parent == top.urn:
            assert child.aliases == [{"noParent": True}], child.name
    for resource in deployment.registrations:
        if resource is top:
            continue
        chain = identities.chain(resource)
        assert chain.startswith(SERVICE_URN_PART), (resource.type, resource.name)
        before = (chain.removeprefix(SERVICE_URN_PART), resource.name)
        assert before in identities.names(resource), (resource.type, resource.name)


def test_the_stack_exports_what_it_did() -> None:
    outputs = run_stack("debian").outputs
    assert outputs == {
        "profile": "debian",
        "release": outputs["release"],
        "endpoints": outputs["endpoints"],
        "keystone_user_id": "glance-user-id",
        "image_service_id": "glance-service-id",
        "database": "glance",
        "image_id": "glance-image-id",
        "stores": {"enabled": ["file"], "default": "file"},
    }
    assert outputs["release"] == "zed"
    assert set(outputs["endpoints"]) == {"public", "internal", "admin"}


@pytest.fixture(scope="module")
def composed() -> Deployment:
    return run_program({**stack_config("debian"), **TEST_SECRETS}, main=COMPOSE)


def test_the_example_composes_the_service_with_its_own_resources(composed: Deployment) -> None:
    top = service(composed)
    assignment = composed.named("demo-glance-reader")
    project = composed.named("demo")
    # The example's own resources sit beside the service, not under it, and use its outputs.
    assert assignment.parent == project.parent == top.parent
    assert assignment.inputs["userId"] == "glance-user-id"
    assert assignment.inputs["projectId"] == "demo-id"
    assert assignment.inputs["roleId"] == "reader-role-id"
    assert composed.depends_on("demo-glance-reader", "glance-user")
    keystone = composed.named("glance-keystone")
    assert keystone.parent == top.urn
    assert assignment.provider.startswith(f"{keystone.urn}::") and project.provider == assignment.provider
    assert composed.outputs["image_id"] == "glance-image-id"
    assert composed.outputs["glance_user_id"] == "glance-user-id"


def test_the_example_registers_the_service_children_under_it(composed: Deployment) -> None:
    top = service(composed)
    children = {(r.type, r.name) for r in composed.registrations if r.parent == top.urn}
    assert children >= {
        ("glance:passwords:ServicePasswords", "glance"),
        ("glance:database:GlanceDatabase", "glance"),
        ("glance:identity:GlanceIdentity", "glance"),
        ("glance:object_store:SwiftContainers", "glance"),
        ("glance:node:GlanceNode", "glance"),
        ("glance:image:CirrosImage", "glance"),
        ("pulumi:providers:openstack", "glance-keystone"),
        ("pulumi:providers:mysql", "glance-mysql"),
    }
    # Everything else the service makes sits under those children.
    own = {"demo", "demo-glance-reader", "glance"}
    by_urn = {r.urn: r for r in composed.registrations}
    for resource in composed.registrations:
        if resource.name in own and resource.parent == top.parent:
            continue
        ancestor = resource
        while ancestor.parent != top.urn:
            ancestor = by_urn[ancestor.parent]
        assert ancestor.parent == top.urn, resource.name
