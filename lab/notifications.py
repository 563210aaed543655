"""Glance's notifications, read from the lab's RabbitMQ.

With `[oslo_messaging_notifications] driver = messagingv2` and
`transport_url = connection["rabbitmq"]["transport_url"]`, Glance (oslo.messaging's rabbit
driver) publishes to the topic exchange `glance` with routing key `notifications.info`
and, before its first notification, declares a queue of that name bound to it. These
functions read and reset that queue as the lab's RabbitMQ user:

    from lab import notifications
    notifications.purge(lab)          # start clean
    ...                                             # create and upload an image
    events = notifications.wait_for(lab, ["image.create", "image.upload", "image.activate"])
    [payload for event_type, payload in events if event_type == "image.activate"]

`lab` is a booted lab.controller.Lab or lab.cluster.Cluster (anything with `.connection`
and `.ssh(command, input=...)`). The client runs on the (first) controller, with Debian's
python3-amqp: lab/amqp_remote.py, sent over ssh stdin with the credentials, which thus
never appear in any process's argv.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from .errors import LabError
from .paths import NOTIFICATIONS_EXCHANGE, NOTIFICATIONS_QUEUE, RABBITMQ_VHOST

REMOTE_PROGRAM = Path(__file__).with_name("amqp_remote.py")

# (event_type, payload), e.g. ("image.activate", {"id": ..., "status": "active", ...}).
Notification = tuple[str, Any]


class Controller(Protocol):
    """What these functions need of a booted lab: its connection settings and ssh."""

    @property
    def connection(self) -> dict[str, Any]: ...

    def ssh(
        self, command: str, *, input: str | None = ..., timeout: float = ..., host: str | None = ...
    ) -> subprocess.CompletedProcess[str]: ...


def remote_request(
    lab: Controller, op: str, queue: str = NOTIFICATIONS_QUEUE, host: str | None = None, **params: Any
) -> dict[str, Any]:
    """Run one request of lab/amqp_remote.py as the lab's RabbitMQ user on the controller
    `host` (None: the first), which reaches RabbitMQ at connection["rabbitmq"]["host"];
    returns its answer. Program and credentials travel on stdin."""
    rabbit = lab.connection["rabbitmq"]
    request = {
        "op": op,
        "host": rabbit["host"],
        "port": rabbit["port"],
        "user": rabbit["user"],
        "password": rabbit["password"],
        "vhost": RABBITMQ_VHOST,
        "exchange": NOTIFICATIONS_EXCHANGE,
        "queue": queue,
        **params,
    }
    program = f"{REMOTE_PROGRAM.read_text()}\nrun({json.dumps(request)!r})\n"
    timeout = float(params.get("timeout", 0)) + 60
    result = lab.ssh("/usr/bin/python3 -", input=program, timeout=timeout, host=host)
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def drain(
    lab: Controller, expect: Iterable[str] = (), timeout: float = 0.0, queue: str = NOTIFICATIONS_QUEUE
) -> list[Notification]:
    """Take every message off the notifications queue (acknowledged: they are gone) and
    return them as (event_type, payload), in queue order.

    With `expect` (event types), keep polling until each has been seen or `timeout`
    seconds pass, whichever is first; the queue may not exist yet (Glance declares it with
    its first notification). Returns what arrived either way: compare it yourself, or use
    wait_for. LabError if a message is not an oslo.messaging notification.
    """
    answer = remote_request(lab, "drain", queue, expect=sorted(set(expect)), timeout=timeout)
    if answer["undecodable"]:
        raise LabError(f"messages in {queue} that are no notifications: {answer['undecodable']}")
    return [(str(event_type), payload) for event_type, payload in answer["notifications"]]


def wait_for(
    lab: Controller, expect: Iterable[str], timeout: float = 60.0, queue: str = NOTIFICATIONS_QUEUE
) -> list[Notification]:
    """drain, then insist: LabError (naming what did arrive) unless every
    event type of `expect` is among the notifications taken within `timeout` seconds."""
    wanted = set(expect)
    got = drain(lab, wanted, timeout, queue)
    missing = wanted - {event_type for event_type, _ in got}
    if missing:
        raise LabError(
            f"no {sorted(missing)} in {queue} within {timeout:.0f}s; got {[event_type for event_type, _ in got]}"
        )
    return got


def purge(lab: Controller, queue: str = NOTIFICATIONS_QUEUE) -> int:
    """Empty the notifications queue so a test starts clean; returns how many messages it
    held (0 if the queue does not exist yet). Safe while Glance runs: the queue and its
    binding stay."""
    return int(remote_request(lab, "purge", queue)["purged"])


def delete_queue(lab: Controller, queue: str = NOTIFICATIONS_QUEUE) -> bool:
    """Delete the notifications queue; returns whether it existed. Only with no Glance
    running, or before its first notification: oslo.messaging declares the queue once per
    connection, so a running Glance's later notifications would go nowhere (unrouted)
    until it reconnects. Prefer purge."""
    return bool(remote_request(lab, "delete", queue)["exists"])


def declare_queue(lab: Controller, queue: str = NOTIFICATIONS_QUEUE) -> None:
    """Declare the exchange, the queue and their binding exactly as oslo.messaging does, so
    that notifications are kept from now on even before Glance's first one."""
    remote_request(lab, "declare", queue)


def publish(
    lab: Controller,
    notifications: Iterable[tuple[str, Mapping[str, Any]]],
    queue: str = NOTIFICATIONS_QUEUE,
    host: str | None = None,
) -> int:
    """Publish (event_type, payload) pairs the way Glance would (oslo.messaging envelopes,
    exchange `glance`, routing key = `queue`, declared as oslo.messaging does), as the lab's
    RabbitMQ user, with publisher confirms, from the controller `host` (None: the first);
    returns how many. For tests of the consumer and of the broker's reach."""
    pairs = [[event_type, dict(payload)] for event_type, payload in notifications]
    return int(remote_request(lab, "publish", queue, host, notifications=pairs)["published"])
