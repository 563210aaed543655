"""Pure renderers for Glance's config files.

Each option is set by one line below, in the order of the install guides, so a diff
of this module reads like a diff of the config. The options that hold secrets are kept
apart (credential_sections): where the release's oslo.config reads a drop-in directory
they go to a file of their own, so glance-api.conf carries none and a preview can show
it line by line. Secrets arrive as plain strings: callers run these inside
`Output.apply`, and the result stays a secret Output.

`config_files` lists the files a node writes, each a ConfigFile record: its path, the name
of the step that writes it, whether it holds a secret, and how to render it. The stores'
glance_store options are in store_options.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from components import store_options
from components.image_import import import_sections
from components.settings import ApiHost, Settings
from components.store_options import SWIFT_REFERENCES
from components.stores import STAGING_DIR, TASKS_DIR, RbdStore, SwiftStore

Sections = dict[str, dict[str, str]]

API_CONF = "/etc/glance/glance-api.conf"
REGISTRY_CONF = "/etc/glance/glance-registry.conf"
CREDENTIALS_FILE = "50-glance-pulumi-credentials.conf"
# tlsCaBundle, which Glance verifies Keystone and the stores with.
CA_FILE = "/etc/glance/glance-pulumi-ca.pem"
# Where glance-api listens behind the TLS terminator on its host: loopback only.
BACKEND_HOST = "127.0.0.1"
BACKEND_PORT = 9293
# Multi-store keeps staged uploads and import work in file stores of these names.
RESERVED_STORES = {"os_glance_staging_store": STAGING_DIR, "os_glance_tasks_store": TASKS_DIR}


@dataclass(frozen=True)
class Credentials:
    """The secret values the config files carry."""

    db_password: str
    glance_password: str
    limits_password: str | None = None


def database_url(settings: Settings, password: str) -> str:
    db = settings.database
    scheme = settings.profile.release.db_url_schemes[db.engine]
    # The password is URL-quoted so '@', ':' or '/' in it cannot break the URL.
    credentials = f"{quote(db.user, safe='')}:{quote(password, safe='')}"
    return f"{scheme}://{credentials}@{db.host}:{db.port}/{quote(db.name, safe='')}"


def authtoken_section(settings: Settings) -> dict[str, str]:
    release = settings.profile.release
    keystone = settings.keystone
    section = {
        release.public_uri_option: keystone.public_uri,
        "auth_url": keystone.auth_url,
    }
    if settings.glance.memcached_servers:
        section["memcached_servers"] = ",".join(settings.glance.memcached_servers)
    section[release.auth_loader_option] = "password"
    if release.domain_by_name:
        section["project_domain_name"] = keystone.domain_name
        section["user_domain_name"] = keystone.domain_name
    else:
        section["project_domain_id"] = keystone.domain_id
        section["user_domain_id"] = keystone.domain_id
    section["project_name"] = keystone.service_project
    section["username"] = keystone.glance_user
    section.update(_ca_option(settings))
    return section


def _ca_option(settings: Settings) -> dict[str, str]:
    """keystoneauth's `cafile`, when the stack trusts a CA of its own."""
    return {"cafile": CA_FILE} if settings.tls.ca_bundle is not None else {}


def credential_sections(settings: Settings, credentials: Credentials) -> Sections:
    """Every option that holds a secret: the database URL, the service passwords, the stores'
    keys and apiSecretOptions."""
    sections: Sections = {
        "database": {"connection": database_url(settings, credentials.db_password)},
        "keystone_authtoken": {"password": credentials.glance_password},
    }
    if settings.limits is not None:
        if credentials.limits_password is None:
            raise ValueError("oslo_limit needs the limits user's password")
        sections["oslo_limit"] = {"password": credentials.limits_password}
    for store in settings.glance.stores:
        secret = store_options.options(store).secret
        if secret:
            section = store.id if settings.glance.multi_store else "glance_store"
            sections.setdefault(section, {}).update(secret)
    for name, options in settings.glance.secret_options.items():
        sections.setdefault(name, {}).update({option: value.get_secret_value() for option, value in options.items()})
    return sections


def api_sections(settings: Settings, limits_endpoint_id: str | None, host: ApiHost | None = None) -> Sections:
    """glance-api.conf of one API host without its credentials (see credential_sections)."""
    sections: Sections = {"DEFAULT": {}}
    if settings.glance.debug:
        sections["DEFAULT"]["debug"] = "True"
    if host is not None and host.self_url is not None:
        # Where another API host proxies the import of an image this host staged.
        sections["DEFAULT"]["worker_self_reference_url"] = host.self_url
    if settings.glance.show_direct_url:
        # Nova and Cinder on Ceph clone an rbd image copy-on-write only when Glance shows its location.
        sections["DEFAULT"]["show_image_direct_url"] = "True"
    if settings.limits is not None:
        # The Zed guide's text says use_keystone_quotas; the option Glance reads is this one.
        sections["DEFAULT"]["use_keystone_limits"] = "True"
    if settings.glance.multi_store:
        sections["DEFAULT"]["enabled_backends"] = ", ".join(f"{s.id}:{s.type}" for s in settings.glance.stores)
    sections["DEFAULT"].update(listen_options(settings))
    sections["keystone_authtoken"] = authtoken_section(settings)
    # Without the keystone flavor the paste pipeline skips authtoken: an open API.
    sections["paste_deploy"] = {"flavor": "keystone"}
    sections.update(store_sections(settings))
    if settings.glance.image_import is not None:
        sections = _overlay(sections, import_sections(settings.glance.image_import, settings.glance.multi_store))
    if settings.limits is not None:
        sections["oslo_limit"] = oslo_limit_section(settings, limits_endpoint_id)
    if settings.tls.behind_proxy:
        # The terminator (or the load balancer) says the request came over https: Glance's
        # links then say so too.
        sections["oslo_middleware"] = {"enable_proxy_headers_parsing": "True"}
    return _overlay(sections, settings.glance.extra_options)


def listen_options(settings: Settings) -> dict[str, str]:
    """Where glance-api listens, and the URL its version document gives: behind a terminator on
    its host, loopback only; behind https, the public endpoint."""
    options = {}
    if settings.tls.on_hosts:
        options = {"bind_host": BACKEND_HOST, "bind_port": str(BACKEND_PORT)}
    if settings.tls.behind_proxy:
        options["public_endpoint"] = settings.glance.endpoints.public
    return options


def store_sections(settings: Settings) -> Sections:
    """The stores' options without their secrets, in the form the release reads."""
    glance = settings.glance
    if not glance.multi_store:
        # Single-store form: one option set per type in [glance_store]; http stays readable
        # as in the guides.
        default = next(store for store in glance.stores if store.id == glance.default_store)
        types = [store.type for store in glance.stores]
        section = {"stores": ",".join([*types, "http"]), "default_store": default.type}
        for store in glance.stores:
            section.update(store_options.options(store).plain)
            section.update(store_options.ca_options(store, _ca_file(settings)))
        return {"glance_store": section}
    sections: Sections = {"glance_store": {"default_backend": glance.default_store}}
    for store in glance.stores:
        description = {"store_description": store.description} if store.description else {}
        ca = store_options.ca_options(store, _ca_file(settings))
        sections[store.id] = {**store_options.options(store).plain, **ca, **description}
    for name, directory in RESERVED_STORES.items():
        sections[name] = {"filesystem_store_datadir": directory + "/"}
    return sections


def _ca_file(settings: Settings) -> str | None:
    return CA_FILE if settings.tls.ca_bundle is not None else None


def oslo_limit_section(settings: Settings, endpoint_id: str | None) -> dict[str, str]:
    assert settings.limits is not None
    if endpoint_id is None:
        raise ValueError("oslo_limit needs the image endpoint id")
    return {
        "auth_url": settings.keystone.auth_url,
        "auth_type": "password",
        "user_domain_id": settings.keystone.domain_id,
        "username": settings.limits.user,
        "system_scope": "all",
        "endpoint_id": endpoint_id,
        "region_name": settings.keystone.region,
        **_ca_option(settings),
    }


def registry_sections(settings: Settings) -> Sections:
    return {
        "keystone_authtoken": authtoken_section(settings),
        "paste_deploy": {"flavor": "keystone"},
    }


def effective_sections(
    settings: Settings, credentials: Credentials, limits_endpoint_id: str | None, host: ApiHost | None = None
) -> Sections:
    """glance-api's options as it reads them: the main file with the credentials over it."""
    return _overlay(api_sections(settings, limits_endpoint_id, host), credential_sections(settings, credentials))


def credentials_path(settings: Settings) -> str | None:
    directory = settings.profile.release.credentials_dir
    return None if directory is None else f"{directory}/{CREDENTIALS_FILE}"


def config_dirs(settings: Settings) -> tuple[str, ...]:
    """Directories the node creates for its files (Glance must be able to enter them)."""
    directory = settings.profile.release.credentials_dir
    return () if directory is None else (directory,)


# The text of a file from the credentials (None for a file without a secret) and the limits
# endpoint's id (None without limits).
Render = Callable[[Credentials | None, str | None], str]


@dataclass(frozen=True)
class ConfigFile:
    path: str
    # The name of the step that writes it (`<node>-config-<step_name>`): part of the
    # resource's URN in deployed stacks, so it never changes.
    step_name: str
    # Carries credentials: rendered inside the credentials' secret Output, never shown.
    secret: bool
    render: Render
    # What the step was called before (pulumi.Alias): the same step, updated in place.
    aliases: tuple[str, ...] = ()


def config_files(settings: Settings, host: ApiHost | None = None) -> tuple[ConfigFile, ...]:
    """Every file the node of `host` writes: those without a secret (which a preview may show) first."""
    plain, secret = _glance_files(settings, host)
    rbd = [store for store in settings.glance.stores if isinstance(store, RbdStore)]
    conf_aliases, keyring_aliases = _rbd_aliases(rbd, {file.step_name for file in plain + secret})
    ceph_confs = [
        ConfigFile(
            store_options.rbd_conf(store),
            f"rbd-{store.id}",
            False,
            _of_store(store_options.ceph_conf_text, store),
            conf_aliases[store.id],
        )
        for store in rbd
    ]
    keyrings = [
        ConfigFile(
            store_options.rbd_keyring(store),
            f"rbd-{store.id}-keyring",
            True,
            _of_store(store_options.keyring_text, store),
            keyring_aliases[store.id],
        )
        for store in rbd
    ]
    return (*plain, *ceph_confs, *secret, *keyrings)


def _glance_files(settings: Settings, host: ApiHost | None) -> tuple[list[ConfigFile], list[ConfigFile]]:
    """Glance's own files, without and with secrets: glance-api.conf and the credentials'
    drop-in where the release reads one, else glance-api.conf (and glance-registry.conf) with
    the credentials in them; the Swift references file."""
    drop_in = credentials_path(settings)
    plain: list[ConfigFile] = []
    secret: list[ConfigFile] = []
    if drop_in is not None:
        plain.append(
            ConfigFile(
                API_CONF,
                "glance-api",
                False,
                lambda _, endpoint_id: render_ini(api_sections(settings, endpoint_id, host)),
            )
        )
        secret.append(
            ConfigFile(
                drop_in,
                "credentials",
                True,
                _with_credentials(lambda credentials, _: render_ini(credential_sections(settings, credentials))),
            )
        )
    else:
        secret.append(
            ConfigFile(
                API_CONF,
                "glance-api",
                True,
                _with_credentials(
                    lambda credentials, endpoint_id: render_ini(
                        effective_sections(settings, credentials, endpoint_id, host)
                    )
                ),
            )
        )
        if settings.profile.release.has_registry:
            secret.append(
                ConfigFile(
                    REGISTRY_CONF,
                    "glance-registry",
                    True,
                    _with_credentials(
                        lambda credentials, _: render_ini(
                            _overlay(registry_sections(settings), credential_sections(settings, credentials))
                        )
                    ),
                )
            )
    ca_bundle = settings.tls.ca_bundle
    if ca_bundle is not None:
        plain.append(ConfigFile(CA_FILE, "ca-bundle", False, lambda _, __: ca_bundle))
    swift = [s for s in settings.glance.stores if isinstance(s, SwiftStore) and not s.multi_tenant]
    if swift:
        secret.append(
            ConfigFile(
                SWIFT_REFERENCES,
                "glance-pulumi-swift",
                True,
                _with_credentials(
                    lambda credentials, _: render_references(
                        {store.id: swift_reference(settings, store, credentials.glance_password) for store in swift}
                    )
                ),
            )
        )
    return plain, secret


def _of_store(text: Callable[[RbdStore], str], store: RbdStore) -> Render:
    """A file rendered from the store alone (its key read only when the file is rendered)."""
    return lambda _, __: text(store)


def _with_credentials(render: Callable[[Credentials, str | None], str]) -> Render:
    def checked(credentials: Credentials | None, endpoint_id: str | None) -> str:
        if credentials is None:
            raise ValueError("a file with secrets is rendered with the credentials")
        return render(credentials, endpoint_id)

    return checked


def _rbd_aliases(rbd: list[RbdStore], taken: set[str]) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """store id -> the old names of its ceph.conf step and of its keyring step.

    An rbd store's steps were named after its files in the shared cephConf directory (e.g.
    `ceph`, `ceph.client.glance.keyring`) before it had files of its own: those names stay
    aliases, so an upgrade rewrites the step instead of deleting the old file (another Ceph
    client's /etc/ceph/ceph.conf) after writing the new one. A name that two stores' files
    would share, or that a step of Glance's own files has (`taken`), is nobody's alias."""
    old = {store.id: [_legacy_step(path) for path in store_options.rbd_legacy_paths(store)] for store in rbd}
    every = [name for names in old.values() for name in names]

    def alias(name: str) -> tuple[str, ...]:
        return (name,) if every.count(name) == 1 and name not in taken else ()

    return {i: alias(names[0]) for i, names in old.items()}, {i: alias(names[1]) for i, names in old.items()}


def _legacy_step(path: str) -> str:
    """The step name of a file before rbd stores had their own: the file's name without .conf."""
    if path.endswith(CREDENTIALS_FILE):
        return "credentials"
    return path.rsplit("/", 1)[-1].removesuffix(".conf")


def swift_reference(settings: Settings, store: SwiftStore, glance_password: str) -> dict[str, str]:
    """The account a single-tenant Swift store puts images in, as glance_store reads it."""
    keystone = settings.keystone
    return store_options.swift_reference(
        store, glance_password, settings.profile.release.domain_by_name, (keystone.domain_id, keystone.domain_name)
    )


def render_ini(sections: Sections) -> str:
    """An oslo.config file; a section without options is left out."""
    return _render({name: options for name, options in sections.items() if options}, _oslo_escape)


def _render(sections: Sections, escape: Callable[[str], str]) -> str:
    lines = ["# Managed by glance-pulumi: edit the stack config, not this file."]
    for name, options in sections.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{key} = {escape(value)}" for key, value in options.items())
    return "\n".join(lines) + "\n"


def _oslo_escape(value: str) -> str:
    """The text that oslo.config reads back as exactly `value`."""
    if "\n" in value:
        raise ValueError("config values cannot span lines")
    # oslo.config substitutes $name references; a literal dollar is written as $$.
    escaped = value.replace("$", "$$")
    # Its parser strips surrounding white space and then one pair of matching quotes:
    # such a value is wrapped in a pair of quotes of its own, which is what gets stripped.
    if escaped != escaped.strip() or (escaped[:1] in ("'", '"') and escaped[0] == escaped[-1]):
        return f'"{escaped}"'
    return escaped


def render_references(sections: Sections) -> str:
    """The Swift references file: glance_store reads it with configparser, not oslo.config."""
    return _render(sections, _configparser_escape)


def _configparser_escape(value: str) -> str:
    """The text glance_store's SwiftConfigParser reads back as exactly `value`."""
    if "\n" in value:
        raise ValueError("config values cannot span lines")
    # Its ConfigParser interpolates '%'; a literal percent is written as %%.
    escaped = value.replace("%", "%%")
    # configparser strips surrounding white space, then glance_store one pair of quotes
    # (and refuses an unclosed one): such a value gets a pair of its own to be stripped.
    if escaped != escaped.strip() or escaped[:1] in ("'", '"'):
        return f'"{escaped}"'
    return escaped


def _overlay(sections: Sections, extra: Mapping[str, Mapping[str, str]]) -> Sections:
    merged = {name: dict(options) for name, options in sections.items()}
    for name, options in extra.items():
        merged.setdefault(name, {}).update(options)
    return merged
