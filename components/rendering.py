"""Pure renderers for Glance's config files.

Each option is set by one line below, in the order of the install guides, so a diff
of this module reads like a diff of the config. Secrets arrive as plain strings:
callers run these inside `Output.apply`, and the result stays a secret Output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from components.settings import Settings

Sections = dict[str, dict[str, str]]

API_CONF = "/etc/glance/glance-api.conf"
REGISTRY_CONF = "/etc/glance/glance-registry.conf"


@dataclass(frozen=True)
class ResolvedSecrets:
    """Secret and engine-assigned values, known only once the resources exist."""

    db_password: str
    glance_password: str
    limits_password: str | None = None
    limits_endpoint_id: str | None = None


def database_url(settings: Settings, password: str) -> str:
    db = settings.database
    scheme = settings.profile.release.db_url_schemes[db.engine]
    # The password is URL-quoted so '@', ':' or '/' in it cannot break the URL.
    credentials = f"{quote(db.user, safe='')}:{quote(password, safe='')}"
    return f"{scheme}://{credentials}@{db.host}:{db.port}/{quote(db.name, safe='')}"


def authtoken_section(settings: Settings, secrets: ResolvedSecrets) -> dict[str, str]:
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
    section["password"] = secrets.glance_password
    return section


def api_sections(settings: Settings, secrets: ResolvedSecrets) -> Sections:
    sections: Sections = {"DEFAULT": {}}
    if settings.glance.debug:
        sections["DEFAULT"]["debug"] = "True"
    if settings.limits is not None:
        # The Zed guide's text says use_keystone_quotas; the option Glance reads is this one.
        sections["DEFAULT"]["use_keystone_limits"] = "True"
    sections["database"] = {"connection": database_url(settings, secrets.db_password)}
    sections["keystone_authtoken"] = authtoken_section(settings, secrets)
    # Without the keystone flavor the paste pipeline skips authtoken: an open API.
    sections["paste_deploy"] = {"flavor": "keystone"}
    sections["glance_store"] = {
        "stores": "file,http",
        "default_store": "file",
        "filesystem_store_datadir": settings.glance.store_path + "/",
    }
    if settings.limits is not None:
        sections["oslo_limit"] = oslo_limit_section(settings, secrets)
    return _overlay(sections, settings.glance.extra_options)


def oslo_limit_section(settings: Settings, secrets: ResolvedSecrets) -> dict[str, str]:
    assert settings.limits is not None
    if secrets.limits_password is None or secrets.limits_endpoint_id is None:
        raise ValueError("oslo_limit needs the limits user's password and the image endpoint id")
    return {
        "auth_url": settings.keystone.auth_url,
        "auth_type": "password",
        "user_domain_id": settings.keystone.domain_id,
        "username": settings.limits.user,
        "system_scope": "all",
        "password": secrets.limits_password,
        "endpoint_id": secrets.limits_endpoint_id,
        "region_name": settings.keystone.region,
    }


def registry_sections(settings: Settings, secrets: ResolvedSecrets) -> Sections:
    return {
        "database": {"connection": database_url(settings, secrets.db_password)},
        "keystone_authtoken": authtoken_section(settings, secrets),
        "paste_deploy": {"flavor": "keystone"},
    }


def config_files(settings: Settings, secrets: ResolvedSecrets) -> dict[str, str]:
    """Every file the node writes, path -> text."""
    files = {API_CONF: render_ini(api_sections(settings, secrets))}
    if settings.profile.release.has_registry:
        files[REGISTRY_CONF] = render_ini(registry_sections(settings, secrets))
    return files


def config_paths(settings: Settings) -> tuple[str, ...]:
    return (API_CONF, REGISTRY_CONF) if settings.profile.release.has_registry else (API_CONF,)


def render_ini(sections: Sections) -> str:
    lines = ["# Managed by glance-pulumi: edit the stack config, not this file."]
    for name, options in sections.items():
        if not options and name == "DEFAULT":
            continue
        lines.append(f"\n[{name}]")
        lines.extend(f"{key} = {_oslo_escape(value)}" for key, value in options.items())
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


def _overlay(sections: Sections, extra: Mapping[str, Mapping[str, str]]) -> Sections:
    merged = {name: dict(options) for name, options in sections.items()}
    for name, options in extra.items():
        merged.setdefault(name, {}).update(options)
    return merged
