"""Interoperable image import as data: the methods, the plugins with their options, and the
web-download filter, each with the Glance options it sets.

The `glance:importPlugins` items are one frozen model per plugin (tagged by `name`), like the
stores; `ImportSettings` is what settings.py derives from the keys, and `import_sections` the
options rendering.py puts into glance-api.conf. The rules that span keys (the release has
import at all, knows the conversion format, web-download is enabled) are in stack_input.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Literal, assert_never, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from components import validators

ImportMethod = Literal["glance-direct", "web-download", "copy-image"]
IMPORT_METHODS: tuple[ImportMethod, ...] = get_args(ImportMethod)
PluginName = Literal["image_conversion", "inject_image_metadata", "image_decompression", "no_op"]
PLUGIN_NAMES: tuple[PluginName, ...] = get_args(PluginName)
WebDownloadScheme = Literal["http", "https"]
WEB_DOWNLOAD_SCHEMES: list[WebDownloadScheme] = ["http", "https"]
# Cloud metadata services: the link-local one Glance refuses by itself, and the IPv6 one of
# EC2-style clouds, which is a unique-local (private) address it would fetch.
METADATA_HOSTS = ("169.254.169.254", "fd00:ec2::254")


def _method(value: str) -> str:
    if value not in IMPORT_METHODS:
        raise ValueError(
            f"{value!r} is not an import method the program configures; one of: {', '.join(IMPORT_METHODS)} "
            "(glance-download needs a federated deployment)"
        )
    return value


Method = Annotated[str, AfterValidator(_method)]


def closed_address(host: str) -> bool:
    """An IP address web-download may reach only when the operator opens it explicitly."""
    address = validators.ip_address(host)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_private or address.is_loopback or address.is_link_local


# oslo.config's DictOpt reads `key:value,key:value`: a key holds no ':' and no ',', a value no ','.
_PROPERTY_KEY = re.compile(r"[^,:\s][^,:]{0,254}")


def _properties(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise ValueError("give at least one property to inject, e.g. {hw_rng_model: virtio}")
    for key, text in value.items():
        if not _PROPERTY_KEY.fullmatch(key) or key != key.strip():
            raise ValueError(f"key {key!r} must be 1-255 characters without ',', ':' or surrounding spaces")
        if "," in text or text != text.strip():
            raise ValueError(f"the value of {key!r} may not contain ',' or surrounding spaces")
    return value


def _role(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,255}", value):
        raise ValueError("a role name is letters, digits, '_', '.' or '-'")
    return value


class _Plugin(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True, strict=False)


class ImageConversion(_Plugin):
    name: Literal["image_conversion"] = "image_conversion"
    # Checked against the release in stack_input.py, so the message can name the release.
    output_format: str = "raw"


class InjectImageMetadata(_Plugin):
    name: Literal["inject_image_metadata"] = "inject_image_metadata"
    properties: Annotated[dict[str, str], AfterValidator(_properties)]
    # Glance's default: an admin's imports are left as they are.
    ignore_user_roles: list[Annotated[str, AfterValidator(_role)]] = Field(default_factory=lambda: ["admin"])


class ImageDecompression(_Plugin):
    name: Literal["image_decompression"] = "image_decompression"


class NoOp(_Plugin):
    name: Literal["no_op"] = "no_op"


Plugin = ImageConversion | InjectImageMetadata | ImageDecompression | NoOp
# A `glance:importPlugins` item: its `name` picks the model.
PluginConfig = Annotated[Plugin, Field(discriminator="name")]


@dataclass(frozen=True)
class WebDownloadFilter:
    """[import_filtering_opts]. With allowed hosts, Glance fetches from those alone (and ignores
    disallowed hosts); without, from any host but the disallowed ones."""

    schemes: tuple[str, ...]
    ports: tuple[int, ...]
    allowed_hosts: tuple[str, ...]
    disallowed_hosts: tuple[str, ...]


@dataclass(frozen=True)
class ImportSettings:
    methods: tuple[str, ...]
    plugins: tuple[Plugin, ...]
    web_download: WebDownloadFilter | None
    # Where staged uploads wait for their import: a file store of Glance's own.
    staging_dir: str

    @property
    def converts(self) -> bool:
        """image_conversion runs qemu-img on the API hosts."""
        return any(isinstance(plugin, ImageConversion) for plugin in self.plugins)


def import_sections(settings: ImportSettings, multi_store: bool) -> dict[str, dict[str, str]]:
    """The options import needs, by section."""
    default = {"enabled_import_methods": _bounded(settings.methods)}
    if not multi_store:
        # Single-store Glance stages into node_staging_uri (upstream default file:///tmp/staging/);
        # multi-store uses the os_glance_staging_store section store_sections renders.
        default["node_staging_uri"] = f"file://{settings.staging_dir}"
    sections: dict[str, dict[str, str]] = {"DEFAULT": default}
    if settings.plugins:
        sections["image_import_opts"] = {"image_import_plugins": _bounded(p.name for p in settings.plugins)}
    for plugin in settings.plugins:
        sections.update(_plugin_sections(plugin))
    if settings.web_download is not None:
        sections["import_filtering_opts"] = _filter_options(settings.web_download)
    return sections


def _plugin_sections(plugin: Plugin) -> dict[str, dict[str, str]]:
    match plugin:
        case ImageConversion():
            return {"image_conversion": {"output_format": plugin.output_format}}
        case InjectImageMetadata():
            return {
                "inject_metadata_properties": {
                    "ignore_user_roles": ",".join(plugin.ignore_user_roles),
                    "inject": ",".join(f"{key}:{value}" for key, value in plugin.properties.items()),
                }
            }
        case ImageDecompression() | NoOp():
            return {}
        case _:
            assert_never(plugin)


def _filter_options(web: WebDownloadFilter) -> dict[str, str]:
    options = {"allowed_schemes": _bounded(web.schemes), "allowed_ports": _bounded(map(str, web.ports))}
    if web.allowed_hosts:
        options["allowed_hosts"] = _bounded(web.allowed_hosts)
    else:
        options["disallowed_hosts"] = _bounded(web.disallowed_hosts)
    return options


def _bounded(items: Iterable[str]) -> str:
    """A list option Glance declares with bounds=True, which refuses the list without its brackets."""
    return f"[{','.join(items)}]"
