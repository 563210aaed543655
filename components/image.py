"""The CirrOS image of the guides' verify step: qcow2, bare, public.

Created only once the node's readiness gate has passed, from the configured URL
(downloaded by the machine running Pulumi, as the guide's curl step does) or a
local file.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack

from components.settings import ImageSettings


@dataclass(frozen=True)
class ImageArgs:
    settings: ImageSettings
    region: str
    provider: openstack.Provider
    ready: pulumi.Resource


class CirrosImage(pulumi.ComponentResource):
    id: pulumi.Output[str]

    def __init__(self, name: str, args: ImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("glance:image:CirrosImage", name, None, opts)
        image = openstack.images.Image(
            f"{name}-image",
            name=args.settings.name,
            disk_format="qcow2",
            container_format="bare",
            visibility="public",
            image_source_url=args.settings.source_url,
            local_file_path=args.settings.local_path,
            region=args.region,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[args.ready]),
        )
        self.id = image.id
        self.register_outputs({"id": self.id})
