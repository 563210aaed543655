"""Another program composing Glance: `GlanceService` from this repository and resources of its own.

The stack config is the same `glance:*` keys as the repository's own program (see the README);
run it from this directory with the repository on the import path:

    PYTHONPATH=../.. pulumi up

Besides the service, it makes a `demo` project in the same Keystone domain and gives the Glance
service user the `reader` role on it, through the service's Keystone provider and its user id.
"""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from components.service import GlanceService, GlanceServiceArgs
from components.settings import read_settings

settings = read_settings()
glance = GlanceService("glance", GlanceServiceArgs(settings=settings))

keystone = pulumi.ResourceOptions(provider=glance.providers.keystone)
project = openstack.identity.Project(
    "demo",
    name="demo",
    domain_id=settings.keystone.domain_id,
    description="A project of the composing program",
    opts=keystone,
)
reader = openstack.identity.get_role_output(
    name="reader", opts=pulumi.InvokeOptions(provider=glance.providers.keystone)
)
openstack.identity.RoleAssignment(
    "demo-glance-reader",
    user_id=glance.keystone_user_id,
    project_id=project.id,
    role_id=reader.id,
    opts=keystone,
)

pulumi.export("image_id", glance.image_id)
pulumi.export("glance_user_id", glance.keystone_user_id)
pulumi.export("demo_project_id", project.id)
