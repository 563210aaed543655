"""Where the lab keeps things, and the fixed facts every part of it agrees on."""

from __future__ import annotations

import os
from pathlib import Path

# Loopback only: the container shares the host's network namespace, so these are
# the host's 127.0.0.1 ports too. Glance's port is checked free at `up` because the
# deployment will start glance-api inside the lab on it. Swift's account, container
# and object servers listen too (the proxy reaches them through its rings).
LOOPBACK = "127.0.0.1"
PORTS: dict[str, int] = {
    "ssh": 2222,
    "mysql": 3306,
    "postgresql": 5432,
    "memcached": 11211,
    "keystone": 5000,
    "swift": 8080,
    "swift_account": 6202,
    "swift_container": 6201,
    "swift_object": 6200,
    "glance": 9292,
}

MACHINE_NAME = "glance-pulumi-lab"
# The cgroup subtree each session's container lives in (see cgroups.py).
CGROUP_NAME = "glance-pulumi-lab"
PG_HBA_PATH = "/etc/postgresql/15/main/pg_hba.conf"
KEYSTONE_AUTH_URL = f"http://{LOOPBACK}:{PORTS['keystone']}/v3"
REGION = "RegionOne"
# The Swift proxy; Keystone's catalog has it as `object-store`, at
# SWIFT_URL/v1/AUTH_<project id> (public, internal and admin alike).
SWIFT_URL = f"http://{LOOPBACK}:{PORTS['swift']}"
SWIFT_SERVICE_TYPE = "object-store"
SWIFT_STORAGE_PORTS = ("swift_account", "swift_container", "swift_object")


def cache_root() -> Path:
    """The machine-wide cache; overridable so tests or CI can relocate it."""
    return Path(os.environ.get("GLANCE_PULUMI_CACHE", "/var/cache/glance-pulumi")) / "lab"


def run_dir() -> Path:
    """State of the one running lab: PID, keys, connection.json, console log."""
    return cache_root() / "run"
