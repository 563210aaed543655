"""Glance's identity in Keystone.

Steps, in the order the engine runs them:
1. look up the existing `service` project and `admin` role (never created here);
2. the `glance` user in the configured domain, and its admin role on `service`;
3. the `glance` service of type `image` and its public, internal and admin endpoints;
4. with Keystone limits (the RHEL/Zed guide's oslo_limit): the limits service account,
   its system-scope `reader` role, and the four registered image limits, which must
   exist before glance-api restarts or every upload meets a limit of zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack
from pulumi_command import local

from components.remote import run_script
from components.settings import Endpoints, KeystoneSettings, LimitsSettings
from components.ssh import SECRET_OUTPUTS


@dataclass(frozen=True)
class IdentityArgs:
    keystone: KeystoneSettings
    endpoints: Endpoints
    service_description: str
    glance_password: pulumi.Output[str]
    limits: LimitsSettings | None
    limits_password: pulumi.Output[str] | None
    provider: openstack.Provider


class GlanceIdentity(pulumi.ComponentResource):
    user_id: pulumi.Output[str]
    service_id: pulumi.Output[str]
    endpoint_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("glance:identity:GlanceIdentity", name, None, opts)
        keystone = args.keystone
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        invoke = pulumi.InvokeOptions(parent=self, provider=args.provider)
        project = openstack.identity.get_project_output(
            name=keystone.service_project, domain_id=keystone.domain_id, opts=invoke
        )
        admin_role = openstack.identity.get_role_output(name="admin", opts=invoke)

        user = openstack.identity.User(
            f"{name}-user",
            name=keystone.glance_user,
            domain_id=keystone.domain_id,
            password=args.glance_password,
            opts=child,
        )
        openstack.identity.RoleAssignment(
            f"{name}-service-admin",
            user_id=user.id,
            project_id=project.id,
            role_id=admin_role.id,
            opts=child,
        )
        service = openstack.identity.ServiceV3(
            f"{name}-service", name="glance", type="image", description=args.service_description, opts=child
        )
        self.endpoint_ids = {
            interface: openstack.identity.EndpointV3(
                f"{name}-endpoint-{interface}",
                service_id=service.id,
                interface=interface,
                url=url,
                endpoint_region=keystone.region,
                region=keystone.region,
                opts=child,
            ).id
            for interface, url in (
                ("public", args.endpoints.public),
                ("internal", args.endpoints.internal),
                ("admin", args.endpoints.admin),
            )
        }
        if args.limits is not None and args.limits_password is not None:
            self._limits(name, args, args.limits, args.limits_password, service, child)
        self.user_id = user.id
        self.service_id = service.id
        self.register_outputs(
            {"user_id": self.user_id, "service_id": self.service_id, "endpoint_ids": self.endpoint_ids}
        )

    def _limits(
        self,
        name: str,
        args: IdentityArgs,
        limits: LimitsSettings,
        password: pulumi.Output[str],
        service: openstack.identity.ServiceV3,
        child: pulumi.ResourceOptions,
    ) -> None:
        keystone = args.keystone
        limits_user = openstack.identity.User(
            f"{name}-limits-user",
            name=limits.user,
            domain_id=keystone.domain_id,
            password=password,
            opts=child,
        )
        # RoleAssignment has no system scope; this command grants it through the Keystone
        # API on create and revokes it on delete, so it lives and dies with the stack.
        admin_password = pulumi.Output.secret(keystone.admin_password.get_secret_value())
        role_params = pulumi.Output.all(limits_user.id, admin_password).apply(
            lambda values: json.dumps(
                {
                    "auth_url": keystone.api_url,
                    "admin_user": keystone.admin_user,
                    "admin_password": values[1],
                    "admin_project": keystone.admin_project,
                    "domain_id": keystone.domain_id,
                    "user_id": values[0],
                    "role": "reader",
                    **({"ca_bundle": keystone.ca_bundle} if keystone.ca_bundle is not None else {}),
                }
            )
        )
        local.Command(
            f"{name}-limits-system-reader",
            create=run_script("keystone_system_role", "grant", ca_bundle=keystone.ca_bundle),
            delete=run_script("keystone_system_role", "revoke", ca_bundle=keystone.ca_bundle),
            stdin=role_params,
            logging=local.Logging.STDOUT_AND_STDERR,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=SECRET_OUTPUTS),
        )
        for resource, default in limits.registered.items():
            openstack.identity.RegisteredLimitV3(
                f"{name}-limit-{resource.replace('_', '-')}",
                service_id=service.id,
                resource_name_=resource,
                default_limit=default,
                region=keystone.region,
                opts=child,
            )
