"""The CirrOS image of the guides' verify step: qcow2, bare, public unless the stack says otherwise.

Steps, in the order the engine runs them:
1. with a checksum (always for a URL): the file, checked on the machine running Pulumi
   (`components/remote/fetch_image.py`). A URL is downloaded, as the guide's curl step does,
   into the image cache (`$GLANCE_PULUMI_CACHE/images`, default /var/cache/glance-pulumi/images,
   one file per checksum, kept); a local file is only checked. A mismatch fails this step,
   naming both checksums, before anything reaches Glance;
2. once every API host's readiness gate has passed and the file is checked, the image,
   uploaded from that file.

The image has an OpenStack provider of its own, configured only after the gate: a
provider takes its token, and with it the service catalog, when it first authenticates,
and the shared one did so before the image endpoints existed, so on a fresh cloud its
catalog would have no image service to upload to.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_openstack as openstack
from pulumi_command import local

from components import scripts
from components.providers import keystone_provider
from components.remote import script_source
from components.settings import ImageSettings, KeystoneSettings
from components.validators import Checksum

CACHE_VARIABLE = "GLANCE_PULUMI_CACHE"
DEFAULT_CACHE = "/var/cache/glance-pulumi"


def cache_path(checksum: Checksum) -> str:
    """Where a downloaded image is kept: named by its checksum, so a new image is a new file
    (and a new upload), and the same one is not downloaded twice. The root must be the same
    on every machine that deploys the stack (the image's file path is one of its inputs)."""
    root = os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE
    return f"{root.rstrip('/')}/images/{checksum.algorithm}-{checksum.hex}.img"


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
        settings = args.settings
        checked: list[pulumi.Resource] = []
        path = settings.local_path
        if settings.checksum is not None:
            path = settings.local_path or cache_path(settings.checksum)
            params = {
                "url": settings.source_url,
                "path": path,
                "algorithm": settings.checksum.algorithm,
                "checksum": settings.checksum.hex,
            }
            checked.append(
                local.Command(
                    f"{name}-image-source",
                    create=scripts.run_python(script_source("fetch_image")),
                    stdin=json.dumps(params),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        if path is None:
            raise ValueError("an image URL needs a checksum (the settings require glance:cirrosChecksum)")
        provider = keystone_provider(
            f"{name}-image-provider", args.keystone, pulumi.ResourceOptions(parent=self, depends_on=list(args.ready))
        )
        image = openstack.images.Image(
            f"{name}-image",
            name=settings.name,
            disk_format="qcow2",
            container_format="bare",
            visibility=settings.visibility,
            local_file_path=path,
            region=args.keystone.region,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[*args.ready, *checked]),
        )
        self.id = image.id
        self.register_outputs({"id": self.id})
