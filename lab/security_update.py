"""The lab's security update of Glance: the packages pinned before and after, and the older
ones put where the controllers' apt finds them.

The lab image prefetched the newest glance only (NEW); OLD is fetched on this machine with apt
(its lists carry bookworm and bookworm-security, as the controllers' do) and copied into each
controller's apt archive, so the install steps need no network there.
"""

from __future__ import annotations

import base64
import subprocess

from .cluster import Cluster
from .paths import cache_root

OLD = "2:25.1.0-2+deb12u3"
NEW = "2:25.1.0-2+deb12u5"
GLANCE_PACKAGES = ("glance-api", "glance-common", "python3-glance")
INSTALLED_GLANCE = "dpkg-query -W -f '${Version}' glance-api"


def deb_file_name(package: str, version: str) -> str:
    """The file `apt-get download` writes for an architecture-independent package (an epoch's
    colon is written %3a)."""
    return f"{package}_{version.replace(':', '%3a')}_all.deb"


def seed_glance_packages(cluster: Cluster, version: str = OLD) -> None:
    """Glance's packages at `version` into every controller's apt archive (downloaded once
    into the lab cache)."""
    debs = cache_root() / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    files = [debs / deb_file_name(package, version) for package in GLANCE_PACKAGES]
    if not all(path.exists() for path in files):
        wanted = [f"{package}={version}" for package in GLANCE_PACKAGES]
        subprocess.run(["apt-get", "download", *wanted], cwd=debs, check=True, capture_output=True, timeout=300)
    for deb in files:
        data = base64.b64encode(deb.read_bytes()).decode()
        for host in cluster.hosts:
            cluster.ssh(f"base64 -d > '/var/cache/apt/archives/{deb.name}'", input=data, host=host["address"])


def installed_glance_versions(cluster: Cluster) -> list[str]:
    """glance-api's installed version on each controller, the first first."""
    return [cluster.ssh(INSTALLED_GLANCE, host=host["address"]).stdout for host in cluster.hosts]
