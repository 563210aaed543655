"""Where the lab keeps things, and the fixed facts every part of it agrees on."""

from __future__ import annotations

import os
from pathlib import Path

# Loopback only: the container shares the host's network namespace, so these are
# the host's 127.0.0.1 ports too. Glance's port is checked free at `up` because the
# deployment will start glance-api inside the lab on it. Swift's account, container
# and object servers listen too (the proxy reaches them through its rings), and so do
# RabbitMQ's Erlang port mapper and distribution port (rabbitmqctl's way in).
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
    "rabbitmq": 5672,
    "rabbitmq_dist": 25672,
    "epmd": 4369,
    "glance": 9292,
}

MACHINE_NAME = "glance-pulumi-lab"
# The cgroup subtree the single lab's container lives in (see nspawn.py).
CGROUP_NAME = "glance-pulumi-lab"
PG_HBA_PATH = "/etc/postgresql/15/main/pg_hba.conf"
KEYSTONE_AUTH_URL = f"http://{LOOPBACK}:{PORTS['keystone']}/v3"
REGION = "RegionOne"
# The Swift proxy; Keystone's catalog has it as `object-store`, at
# SWIFT_URL/v1/AUTH_<project id> (public, internal and admin alike).
SWIFT_URL = f"http://{LOOPBACK}:{PORTS['swift']}"
SWIFT_SERVICE_TYPE = "object-store"
SWIFT_STORAGE_PORTS = ("swift_account", "swift_container", "swift_object")
# RabbitMQ (AMQP 0-9-1, vhost "/"): the user Glance sends notifications as has configure,
# write and read permissions there; guest is deleted. With oslo.messaging's defaults and
# `driver = messagingv2`, Glance publishes to the topic exchange `glance` with routing key
# `notifications.info`, into a queue of that name which it declares itself.
RABBITMQ_USER = "glance-notify"
RABBITMQ_VHOST = "/"
NOTIFICATIONS_EXCHANGE = "glance"
NOTIFICATIONS_QUEUE = "notifications.info"


def cache_root() -> Path:
    """The machine-wide cache; overridable so tests or CI can relocate it."""
    return Path(os.environ.get("GLANCE_PULUMI_CACHE", "/var/cache/glance-pulumi")) / "lab"


def run_dir() -> Path:
    """State of the one running lab: PID, keys, connection.json, console log."""
    return cache_root() / "run"


# ---- the two-controller lab (lab.cluster) ----------------------------------------------
# Each controller runs in its own network namespace, on a bridge the cluster creates on
# the host; nothing is routed beyond it (no ip_forward, no firewall changes). The subnet
# must not clash with the host's own (192.0.2.0/24 on eth0 here); the cluster checks.
CLUSTER_BRIDGE = "glpl-br0"
CLUSTER_SUBNET = "10.77.0.0/24"
CLUSTER_HOST_ADDRESS = "10.77.0.1"  # the host's side of the bridge
# (hostname, address); the first keeps every lab service and runs HAProxy.
CLUSTER_NODES: tuple[tuple[str, str], ...] = (("controller", "10.77.0.11"), ("controller2", "10.77.0.12"))
# HAProxy on the first controller, in front of Glance (9292) on every controller: Glance
# itself binds 0.0.0.0:9292 there too, so the load balancer takes another port.
CLUSTER_LB_PORT = 9200
CLUSTER_LB_STATS_PORT = 9201
# nspawn machine and cgroup names: cluster-<hostname>, apart from the single lab's.
CLUSTER_MACHINE_PREFIX = "glance-pulumi-cluster"


def cluster_run_dir() -> Path:
    """State of the running cluster: PIDs, key, connection.json, consoles."""
    return cache_root() / "cluster-run"
