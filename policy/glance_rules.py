"""Deployment rules for glance-pulumi stacks, checked by the engine before anything changes.

- environment-declared: the stack file sets `glance:environment` (production, staging,
  development or lab), and a stack whose name looks like production (a word prod, prd,
  production or live, trailing digits aside: Production, PROD, eu-prod2) declares production;
- no-plaintext-credentials: every credential in the stack's config file is a secret: the
  credential keys and stores' options, any URL with a password in it (scheme://user:pw@host),
  `glance:apiOptions` items that set a credential option, and `glance:apiSecretOptions`;
- production-data-protected: in production the database and the image store are protected;
- production-https-endpoints: in production every URL a credential travels over is https://:
  the image endpoints and the OpenStack providers' authUrl (the Keystone admin password);
- production-https-config: the same for the stack file's URLs: keystoneUrl, keystoneAuthUrl,
  keystoneApiUrl (unset: their http:// defaults) and the stores' Swift authUrl, S3 endpoint and
  Cinder endpointTemplate;
- production-host-keys-verified: production does not set `glance:insecureIgnoreHostKeys`;
- production-tls-verified: production turns off no TLS verification: no OpenStack provider sets
  `insecure`, no `glance:apiOptions` item sets an `*insecure` option (authtoken's `insecure`,
  `swift_store_auth_insecure`, `cinder_api_insecure`) true; a private CA goes to `glance:tlsCaBundle`;
- image-service-interfaces: the image service has its public, internal and admin endpoints.

Production is what the stack file says (`glance:environment: production`), never what the stack
is called; the name only raises a doubt that environment-declared turns into a violation. The
rules read the stack file from the project this pack belongs to, the stack's name taken from the
resources' URNs. They are plain functions of the engine's arguments, so the tests can call them
directly as well as through the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeGuard

import yaml
from pulumi_policy import (
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components.stack_input import (
    CREDENTIAL_OPTION,
    ENVIRONMENTS,
    NAMESPACE,
    SECRET_KEYS,
    URL_WITH_PASSWORD,
    is_unset,
)
from components.stores import SECRET_OPTIONS

# The pack lives in the project's policy/ folder; the engine starts it with that folder as
# its working directory, so the project (and its stack files) is found from here.
PROJECT = Path(__file__).resolve().parent.parent
ENVIRONMENT = f"{NAMESPACE}:environment"
# Words of a stack name that suggest production (compared in lower case, trailing digits stripped).
PRODUCTION_WORDS = frozenset({"prod", "prd", "production", "live"})
DATA_RESOURCES = {
    "mysql:index/database:Database",
    "postgresql:index/database:Database",
    # A Swift store's container, which the program creates when a store asks for it.
    "openstack:objectstorage/container:Container",
}
# The file stores' directories: glance-image-store-<store id> (glance-N-... on the Nth API host).
IMAGE_STORE = re.compile(r"^glance(-\d+)?-image-store(-|$)")
ENDPOINT = "openstack:identity/endpointV3:EndpointV3"
# The Keystone admin's provider and each Swift store's account provider: authUrl carries a password.
OPENSTACK_PROVIDER = "pulumi:providers:openstack"
INTERFACES = {"public", "internal", "admin"}
# Store options that name a URL a credential (a key, a token) is sent to, by store type.
STORE_URLS = {"swift": "authUrl", "s3": "endpoint", "cinder": "endpointTemplate"}


class HasUrn(Protocol):
    urn: str


def stack_of(resource: HasUrn) -> str:
    """urn:pulumi:STACK::project::type::name -> STACK."""
    return resource.urn.split(":", 3)[2].split("::", 1)[0]


def named_like_production(stack: str) -> bool:
    """Production, PROD, prd, live, eu-prod2: a word of the name; preprod and product are not."""
    words = re.split(r"[^a-z0-9]+", stack.lower())
    return any(re.sub(r"\d+$", "", word) in PRODUCTION_WORDS for word in words)


def is_production(config: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
    """What the stack file declares decides, not the stack's name."""
    return config is not None and config.get(ENVIRONMENT) == "production"


def stack_config_file(project: Path, stack: str) -> Path:
    settings = yaml.safe_load((project / "Pulumi.yaml").read_text()) or {}
    return project / str(settings.get("stackConfigDir", ".")) / f"Pulumi.{stack}.yaml"


def read_stack_config(path: Path) -> dict[str, Any] | None:
    """The stack file's `config:` map, or None when there is no such file."""
    if not path.exists():
        return None
    config = (yaml.safe_load(path.read_text()) or {}).get("config")
    return config if isinstance(config, dict) else {}


def stack_files(args: StackValidationArgs, project: Path) -> Iterator[tuple[str, Path, dict[str, Any] | None]]:
    for stack in sorted({stack_of(resource) for resource in args.resources}):
        path = stack_config_file(project, stack)
        yield stack, path, read_stack_config(path)


def production_config(resource: HasUrn, project: Path) -> dict[str, Any] | None:
    """The stack file's config when it declares production, else None."""
    config = read_stack_config(stack_config_file(project, stack_of(resource)))
    return config if is_production(config) else None


def shown(url: str) -> str:
    """A URL fit for a message: its user info (which may hold a password) left out."""
    return re.sub(r"://[^/@\s]*@", "://", url)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _is_secret(value: Any) -> bool:
    """`secure:`, or a list whose every item is (`config set --secret --path 'key[0]'`)."""
    return _is_secure(value) or (isinstance(value, list) and bool(value) and all(map(_is_secure, value)))


def _is_unset(key: str, value: Any) -> bool:
    """The key's empty Pulumi.yaml default, which stands for unset (`glance:KEY`)."""
    return is_unset(key.removeprefix(f"{NAMESPACE}:"), value)


def plaintext_credentials(config: dict[str, Any]) -> list[str]:
    """Credential keys whose value is written out, not `secure:` (stores' options included)."""
    found = [
        f"{NAMESPACE}:{key}"
        for key in SECRET_KEYS
        if f"{NAMESPACE}:{key}" in config
        and not _is_secret(config[f"{NAMESPACE}:{key}"])
        and not _is_unset(key, config[f"{NAMESPACE}:{key}"])
    ]
    stores = config.get(f"{NAMESPACE}:stores")
    for index, item in enumerate(stores if isinstance(stores, list) else []):
        if isinstance(item, dict):
            found += [
                f"{NAMESPACE}:stores[{index}].{option}"
                for option in SECRET_OPTIONS & item.keys()
                if not _is_secret(item[option])
            ]
    return sorted(found)


def _within(key: str, outer: str) -> bool:
    """key is outer itself or a part of it (outer[0], outer.option)."""
    return key == outer or key.startswith((f"{outer}[", f"{outer}."))


def plain_strings(value: Any, key: str) -> Iterator[tuple[str, str]]:
    """Every plaintext string of a config value, with its path (key, key[0], key[0].option)."""
    if _is_secure(value):
        return
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from plain_strings(item, f"{key}[{index}]")
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from plain_strings(item, f"{key}.{name}")


def credential_api_options(config: dict[str, Any]) -> list[tuple[str, str]]:
    """apiOptions items that set a credential: (path, section.option). glance-api.conf and the
    preview show these items, and the stack file holds them in plaintext."""
    items = config.get(f"{NAMESPACE}:apiOptions")
    found = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, str):
            continue
        name = item.split("=", 1)[0]
        option = name.partition(".")[2]
        if CREDENTIAL_OPTION.search(option.lower()) or URL_WITH_PASSWORD.search(item):
            found.append((f"{NAMESPACE}:apiOptions[{index}]", name))
    return found


def credential_findings(config: dict[str, Any], file: str) -> list[str]:
    """no-plaintext-credentials' messages for one stack file (they never repeat a value)."""
    found: dict[str, str] = {}
    for key in plaintext_credentials(config):
        argument = f"--path '{key}'" if "[" in key else key
        found[key] = f"{key} is in plaintext in {file}: set it with `pulumi config set --secret {argument}`"
    for key, name in credential_api_options(config):
        found[key] = (
            f"{key} ({name}) holds a credential in plaintext in {file}: move the item to "
            f"{NAMESPACE}:apiSecretOptions, set with `pulumi config set --secret {NAMESPACE}:apiSecretOptions "
            f"'[\"{name}=…\"]'`"
        )
    for top, value in config.items():
        for key, text in plain_strings(value, str(top)):
            if URL_WITH_PASSWORD.search(text) and not any(_within(key, reported) for reported in found):
                argument = f"--path '{key}'" if "[" in key or "." in key.partition(":")[2] else key
                found[key] = (
                    f"{key} holds a URL with a password (scheme://user:password@host) in plaintext in {file}: "
                    f"take the password out of the URL, or set the value with `pulumi config set --secret {argument}`"
                )
    return [found[key] for key in sorted(found)]


def no_plaintext_credentials(args: StackValidationArgs, report: ReportViolation, project: Path = PROJECT) -> None:
    """The stack files are read from `project`, the project this pack belongs to."""
    for stack, path, config in stack_files(args, project):
        if config is None:
            report(f"cannot check the credentials of stack {stack}: {path} does not exist", None)
            continue
        for message in credential_findings(config, path.name):
            report(message, None)


def environment_declared(args: StackValidationArgs, report: ReportViolation, project: Path = PROJECT) -> None:
    """The stack file says what the stack is; a production-sounding name must declare production."""
    for stack, path, config in stack_files(args, project):
        if config is None:
            report(f"cannot check the environment of stack {stack}: {path} does not exist", None)
            continue
        environment = config.get(ENVIRONMENT)
        how = f"`pulumi config set --stack {stack} {ENVIRONMENT} ENVIRONMENT` ({', '.join(ENVIRONMENTS)})"
        if environment is None or _is_unset(ENVIRONMENT, environment):
            report(f"stack {stack} does not declare {ENVIRONMENT} in {path.name}: set it with {how}", None)
        elif environment not in ENVIRONMENTS:
            shown = repr(environment) if isinstance(environment, str) else "not a plain string"
            report(f"{ENVIRONMENT} of stack {stack} is {shown} in {path.name}: set it with {how}", None)
        if named_like_production(stack) and environment != "production":
            declared = environment if isinstance(environment, str) and environment else "unset"
            report(
                f"stack {stack} is named like production but its {ENVIRONMENT} is {declared}: set "
                f"`pulumi config set --stack {stack} {ENVIRONMENT} production`, or rename the stack",
                None,
            )


def production_data_protected(args: ResourceValidationArgs, report: ReportViolation, project: Path = PROJECT) -> None:
    if production_config(args, project) is None:
        return
    is_data = args.resource_type in DATA_RESOURCES or IMAGE_STORE.match(args.name) is not None
    if is_data and not args.opts.protect:
        report(f"{args.name} holds the deployment's data: set glance:protectData true in a production stack", None)


def production_https_endpoints(args: ResourceValidationArgs, report: ReportViolation, project: Path = PROJECT) -> None:
    """The image endpoints and the OpenStack providers' authUrl are https:// in production."""
    if args.resource_type == ENDPOINT:
        url, what = args.props.get("url"), f"the {args.props.get('interface')} image endpoint"
    elif args.resource_type == OPENSTACK_PROVIDER:
        url, what = args.props.get("authUrl"), f"the Keystone URL of provider {args.name} (authUrl)"
    else:
        return
    # An unknown value (not yet computed) is no URL to judge; the program's own are known at preview.
    if not isinstance(url, str) or url.startswith("https://") or production_config(args, project) is None:
        return
    report(f"{what} {shown(url)} is not https:// in a production stack", None)


def config_urls(config: dict[str, Any]) -> Iterator[tuple[str, Any, str | None]]:
    """(key, value, the default it stands for when unset) of every URL a credential goes to."""
    keystone_url = config.get(f"{NAMESPACE}:keystoneUrl")
    auth_url = config.get(f"{NAMESPACE}:keystoneAuthUrl")
    api_url = config.get(f"{NAMESPACE}:keystoneApiUrl")
    yield f"{NAMESPACE}:keystoneUrl", keystone_url, "http://<controllerHost>:5000"
    yield f"{NAMESPACE}:keystoneAuthUrl", auth_url, "http://<controllerHost>:<the profile's Keystone port>"
    if api_url is None or _is_unset("keystoneApiUrl", api_url):
        # Derived from keystoneAuthUrl: judged there when that is set, else the http:// default.
        if auth_url is None or _is_unset("keystoneAuthUrl", auth_url):
            yield f"{NAMESPACE}:keystoneApiUrl", None, "http://<controllerHost>:<the profile's Keystone port>/v3"
    else:
        yield f"{NAMESPACE}:keystoneApiUrl", api_url, None
    stores = config.get(f"{NAMESPACE}:stores")
    for index, item in enumerate(stores if isinstance(stores, list) else []):
        if not isinstance(item, dict):
            continue
        option = STORE_URLS.get(str(item.get("type")))
        # An unset Swift authUrl is keystoneAuthUrl's, judged above.
        if option is not None and option in item:
            yield f"{NAMESPACE}:stores[{index}].{option}", item[option], None


def production_https_config(args: StackValidationArgs, report: ReportViolation, project: Path = PROJECT) -> None:
    """The stack file's Keystone and store URLs are https:// in production (unset: http:// defaults)."""
    for _stack, path, config in stack_files(args, project):
        if not is_production(config):
            continue
        for key, value, default in config_urls(config):
            if value is None or _is_unset(key, value):
                if default is not None:
                    report(f"{key} is unset in {path.name}, so it defaults to {default}: set an https:// URL", None)
            elif not isinstance(value, str):
                report(f"{key} is not a plain string in {path.name}: cannot check that it is https://", None)
            elif not value.startswith("https://"):
                report(f"{key} {shown(value)} is not https:// in a production stack", None)


def production_host_keys_verified(args: StackValidationArgs, report: ReportViolation, project: Path = PROJECT) -> None:
    for _stack, path, config in stack_files(args, project):
        ignored = is_production(config) and str(config.get(f"{NAMESPACE}:insecureIgnoreHostKeys")).lower() == "true"
        if ignored:
            report(
                f"{NAMESPACE}:insecureIgnoreHostKeys is true in {path.name}: a production stack verifies "
                f"every SSH host key; remove it and pin the hosts' keys in {NAMESPACE}:sshHostKeys",
                None,
            )


# Options that switch TLS verification off, as oslo.config and glance_store name them.
INSECURE_OPTION = re.compile(r"(^|_)insecure$")
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})


def insecure_api_options(config: dict[str, Any]) -> list[str]:
    """`glance:apiOptions[N] (section.option)` of each item that sets an insecure option true."""
    items = config.get(f"{NAMESPACE}:apiOptions")
    found = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, str):
            continue
        name, _, value = (part.strip() for part in item.partition("="))
        if INSECURE_OPTION.search(name.partition(".")[2].lower()) and value.lower() in TRUE_WORDS:
            found.append(f"{NAMESPACE}:apiOptions[{index}] ({name})")
    return found


def production_tls_verified(args: StackValidationArgs, report: ReportViolation, project: Path = PROJECT) -> None:
    remedy = f"a production stack verifies every certificate; trust a private CA with {NAMESPACE}:tlsCaBundle"
    for _stack, path, config in stack_files(args, project):
        if is_production(config):
            for where in insecure_api_options(config):
                report(f"{where} turns TLS verification off in {path.name}: {remedy}", None)
    for resource in args.resources:
        insecure = str(resource.props.get("insecure")).lower() == "true"
        if resource.resource_type == OPENSTACK_PROVIDER and insecure and production_config(resource, project):
            report(f"provider {resource.name} sets insecure, which turns TLS verification off: {remedy}", None)


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
        "environment-declared",
        "The stack file sets glance:environment; a stack named like production declares production.",
        environment_declared,
    ),
    _stack_policy(
        "no-plaintext-credentials", "Credentials in the stack config are Pulumi secrets.", no_plaintext_credentials
    ),
    _resource_policy(
        "production-data-protected",
        "A production stack protects the database and the image store.",
        production_data_protected,
    ),
    _resource_policy(
        "production-https-endpoints",
        "A production stack's image endpoints and OpenStack providers' authUrl are https://.",
        production_https_endpoints,
    ),
    _stack_policy(
        "production-https-config",
        "A production stack's Keystone URLs and stores' URLs in the stack file are https://.",
        production_https_config,
    ),
    _stack_policy(
        "production-host-keys-verified",
        "A production stack does not set glance:insecureIgnoreHostKeys.",
        production_host_keys_verified,
    ),
    _stack_policy(
        "production-tls-verified",
        "A production stack turns off no TLS verification (providers' insecure, apiOptions' *insecure).",
        production_tls_verified,
    ),
    _stack_policy(
        "image-service-interfaces",
        "The image service has public, internal and admin endpoints.",
        image_service_interfaces,
    ),
]
