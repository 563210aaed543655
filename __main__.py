"""Deploy the OpenStack Image service (Glance) onto a controller.

The stack config is validated first; then one `GlanceService` (components/service.py) checks every
SSH host's key against its pin and deploys, in dependency order:
passwords -> database + Keystone identity (+ Swift containers) -> each API host's remote
steps -> the CirrOS image.
"""

from __future__ import annotations

import pulumi

from components.service import GlanceService, GlanceServiceArgs
from components.settings import read_settings

service = GlanceService("glance", GlanceServiceArgs(settings=read_settings()))
for name, value in service.outputs().items():
    pulumi.export(name, value)
