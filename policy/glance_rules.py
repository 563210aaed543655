"""Deployment rules for glance-pulumi stacks, checked by the engine before anything changes.

- no-plaintext-credentials: every credential key in the stack's config file is a secret;
- production-data-protected: in a production stack the database and the image store are protected;
- production-https-endpoints: in a production stack the image endpoints are https://;
- image-service-interfaces: the image service has its public, internal and admin endpoints.

A stack's name marks production when one of its dash/dot/underscore-separated words is
`prod` or `production` (prod, eu-prod, production.west). The rules are plain functions of
the engine's arguments, so the tests can call them directly as well as through the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import yaml
from pulumi_policy import (
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components.settings import NAMESPACE, SECRET_KEYS
from components.stores import SECRET_OPTIONS

# The pack lives in the project's policy/ folder; the engine starts it with that folder as
# its working directory, so the project (and its stack files) is found from here.
PROJECT = Path(__file__).resolve().parent.parent
PRODUCTION = re.compile(r"(^|[-_.])prod(uction)?($|[-_.])")
DATA_RESOURCES = {
    "mysql:index/database:Database",
    "postgresql:index/database:Database",
    # A Swift store's container, which the program creates when a store asks for it.
    "openstack:objectstorage/container:Container",
}
# The file stores' directories: glance-image-store-<store id> (glance-N-... on the Nth API host).
IMAGE_STORE = re.compile(r"^glance(-\d+)?-image-store(-|$)")
ENDPOINT = "openstack:identity/endpointV3:EndpointV3"
INTERFACES = {"public", "internal", "admin"}


class HasUrn(Protocol):
    urn: str


def stack_of(resource: HasUrn) -> str:
    """urn:pulumi:STACK::project::type::name -> STACK."""
    return resource.urn.split(":", 3)[2].split("::", 1)[0]


def is_production(stack: str) -> bool:
    return PRODUCTION.search(stack) is not None


def stack_config_file(project: Path, stack: str) -> Path:
    settings = yaml.safe_load((project / "Pulumi.yaml").read_text()) or {}
    return project / str(settings.get("stackConfigDir", ".")) / f"Pulumi.{stack}.yaml"


def plaintext_credentials(config: dict[str, Any]) -> list[str]:
    """Credential keys whose value is written out, not `secure:` (stores' options included)."""
    found = [
        f"{NAMESPACE}:{key}"
        for key in SECRET_KEYS
        if f"{NAMESPACE}:{key}" in config and not isinstance(config[f"{NAMESPACE}:{key}"], dict)
    ]
    stores = config.get(f"{NAMESPACE}:stores")
    for index, item in enumerate(stores if isinstance(stores, list) else []):
        if isinstance(item, dict):
            found += [
                f"{NAMESPACE}:stores[{index}].{option}"
                for option in SECRET_OPTIONS & item.keys()
                if not isinstance(item[option], dict)
            ]
    return sorted(found)


def no_plaintext_credentials(args: StackValidationArgs, report: ReportViolation, project: Path = PROJECT) -> None:
    """The stack files are read from `project`, the project this pack belongs to."""
    stacks = {stack_of(resource) for resource in args.resources}
    for stack in sorted(stacks):
        path = stack_config_file(project, stack)
        if not path.exists():
            report(f"cannot check the credentials of stack {stack}: {path} does not exist", None)
            continue
        config = (yaml.safe_load(path.read_text()) or {}).get("config", {})
        for key in plaintext_credentials(config):
            argument = f"--path '{key}'" if "[" in key else key
            report(f"{key} is in plaintext in {path.name}: set it with `pulumi config set --secret {argument}`", None)


def production_data_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_production(stack_of(args)):
        return
    is_data = args.resource_type in DATA_RESOURCES or IMAGE_STORE.match(args.name) is not None
    if is_data and not args.opts.protect:
        report(f"{args.name} holds the deployment's data: set glance:protectData true in a production stack", None)


def production_https_endpoints(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ENDPOINT or not is_production(stack_of(args)):
        return
    url = str(args.props.get("url", ""))
    if not url.startswith("https://"):
        report(f"the {args.props.get('interface')} image endpoint {url} is not https:// in a production stack", None)


def image_service_interfaces(args: StackValidationArgs, report: ReportViolation) -> None:
    present = {str(r.props.get("interface")) for r in args.resources if r.resource_type == ENDPOINT}
    missing = INTERFACES - present
    if missing:
        report(f"the image service lacks its {', '.join(sorted(missing))} endpoint(s)", None)


def _resource_policy(name: str, description: str, check: Callable[..., None]) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description, validate=check)


def _stack_policy(name: str, description: str, check: Callable[..., None]) -> StackValidationPolicy:
    return StackValidationPolicy(name=name, description=description, validate=check)


POLICIES: list[Policy] = [
    _stack_policy(
        "no-plaintext-credentials", "Credentials in the stack config are Pulumi secrets.", no_plaintext_credentials
    ),
    _resource_policy(
        "production-data-protected",
        "A production stack protects the database and the image store.",
        production_data_protected,
    ),
    _resource_policy(
        "production-https-endpoints", "A production stack's image endpoints are https://.", production_https_endpoints
    ),
    _stack_policy(
        "image-service-interfaces",
        "The image service has public, internal and admin endpoints.",
        image_service_interfaces,
    ),
]
