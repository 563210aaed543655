"""The CirrOS image of the guides' verify step: qcow2, bare, public.

Created only once the node's readiness gate has passed, from the configured URL
(downloaded by the machine running Pulumi, as the guide's curl step does) or a
local file.

The image has an OpenStack provider of its own, configured only after the gate: a
provider takes its token, and with it the service catalog, when it first authenticates,
and the shared one did so before the image endpoints existed, so on a fresh cloud its
catalog would have no image service to upload to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from components.providers import keystone_provider
from components.settings import ImageSettings, KeystoneSettings


@dataclass(frozen=True)
class ImageArgs:
    settings: ImageSettings
    keystone: KeystoneSettings
    # Every API host's readiness gate: Glance answers and its endpoints are in the catalog.
    ready: Sequence[pulumi.Resource]


class CirrosImage(pulumi.ComponentResource):
    id: pulumi.Output[str]

    def __init__(self, name: str, args: ImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("glance:image:CirrosImage", name, None, opts)
        provider = keystone_provider(
            f"{name}-image-provider", args.keystone, pulumi.ResourceOptions(parent=self, depends_on=list(args.ready))
        )
        image = openstack.images.Image(
            f"{name}-image",
            name=args.settings.name,
            disk_format="qcow2",
            container_format="bare",
            visibility="public",
            image_source_url=args.settings.source_url,
            local_file_path=args.settings.local_path,
            region=args.keystone.region,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=list(args.ready)),
        )
        self.id = image.id
        self.register_outputs({"id": self.id})
