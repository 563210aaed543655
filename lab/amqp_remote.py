"""Runs ON a lab controller, not on the host: the lab's AMQP client, for lab.notifications.

lab.notifications sends this file's text to `/usr/bin/python3 -` over ssh stdin, followed
by one line `run(<request as a JSON string literal>)`. The request carries RabbitMQ's
credentials, so they never appear in any process's argv. It uses Debian's python3-amqp
(installed in the image; not needed on the host, which imports only the pure functions
below). `run` prints one JSON object, the answer.

Requests ({"op": ..., "host", "port", "user", "password", "vhost", "exchange", "queue"}):
- declare: the topic exchange, the queue and their binding (routing key = the queue's
  name), exactly as oslo.messaging's rabbit driver declares them before its first
  notification: non-durable, not auto-deleted, no arguments (its defaults).
- publish: declare, then publish `notifications` ([[event_type, payload], ...]) as
  oslo.messaging's messagingv2 driver does (JSON envelopes), with publisher confirms.
- drain: get and acknowledge every message of the queue, decoded; if `expect` (event
  types) is given, keep polling until each has been seen, or `timeout` seconds pass (also
  when the queue does not exist yet). Without `expect`, poll for `timeout` seconds anyway.
- purge: empty the queue (if it exists). delete: delete it (if it exists).
"""

from __future__ import annotations

import importlib
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

# oslo.messaging's envelope (oslo_messaging/_drivers/common.py: serialize_msg).
ENVELOPE_VERSION = "2.0"


def envelope(event_type: str, payload: Any, publisher_id: str = "image.controller") -> str:
    """The body oslo.messaging's messagingv2 driver publishes for one INFO notification."""
    message = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": publisher_id,
        "event_type": event_type,
        "priority": "INFO",
        "payload": payload,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "_unique_id": uuid.uuid4().hex,
    }
    return json.dumps({"oslo.version": ENVELOPE_VERSION, "oslo.message": json.dumps(message)})


def decode(body: str) -> tuple[str, Any]:
    """(event_type, payload) of a notification's body: an oslo.messaging envelope (its
    `oslo.message` is a JSON string) or, unenveloped (messaging driver), the message itself.
    ValueError if it is neither."""
    outer = json.loads(body)
    message = json.loads(outer["oslo.message"]) if isinstance(outer, dict) and "oslo.message" in outer else outer
    if not isinstance(message, dict) or not isinstance(message.get("event_type"), str) or "payload" not in message:
        raise ValueError(f"not an oslo.messaging notification: {body[:500]}")
    return message["event_type"], message["payload"]


# ---- below: only on the controller (python3-amqp) --------------------------------------


def _connect(request: dict[str, Any]) -> Any:
    # Imported here: the host (which imports envelope/decode) has no amqp module.
    amqp = importlib.import_module("amqp")
    connection = amqp.Connection(
        f"{request['host']}:{request['port']}",
        userid=request["user"],
        password=request["password"],
        virtual_host=request["vhost"],
        connect_timeout=10,
    )
    connection.connect()
    return connection


def _declare(channel: Any, exchange: str, queue: str) -> None:
    # kombu's Exchange/Queue as oslo.messaging builds them (impl_rabbit: notify_send,
    # _publish_and_creates_default_queue) with amqp_durable_queues and amqp_auto_delete off.
    channel.exchange_declare(exchange, "topic", durable=False, auto_delete=False)
    channel.queue_declare(queue, durable=False, exclusive=False, auto_delete=False)
    channel.queue_bind(queue, exchange, routing_key=queue)


def _exists(connection: Any, queue: str) -> tuple[bool, int]:
    """(exists, messages ready). A passive declare of a missing queue closes its channel."""
    amqp = importlib.import_module("amqp")
    channel = connection.channel()
    try:
        _, count, _ = channel.queue_declare(queue, passive=True)
    except amqp.exceptions.NotFound:
        return False, 0
    channel.close()
    return True, int(count)


def _drain(connection: Any, queue: str, expect: list[str], timeout: float) -> dict[str, Any]:
    amqp = importlib.import_module("amqp")
    deadline = time.monotonic() + timeout
    notifications: list[tuple[str, Any]] = []
    undecodable: list[str] = []
    while True:
        try:
            channel = connection.channel()
            while (message := channel.basic_get(queue, no_ack=False)) is not None:
                body = message.body.decode() if isinstance(message.body, bytes) else message.body
                try:
                    notifications.append(decode(body))
                except ValueError:
                    undecodable.append(body[:2000])
                channel.basic_ack(message.delivery_tag)
            channel.close()
        except amqp.exceptions.NotFound:
            pass  # the queue does not exist (yet): Glance declares it with its first notification
        seen = {event_type for event_type, _ in notifications}
        if (expect and set(expect) <= seen) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return {"notifications": notifications, "undecodable": undecodable}


def handle(request: dict[str, Any]) -> dict[str, Any]:
    op, exchange, queue = request["op"], request["exchange"], request["queue"]
    with _connect(request) as connection:
        if op == "declare":
            _declare(connection.channel(), exchange, queue)
            return {"declared": True}
        if op == "publish":
            channel = connection.channel()
            _declare(channel, exchange, queue)
            channel.confirm_select()
            amqp = importlib.import_module("amqp")
            for event_type, payload in request["notifications"]:
                message = amqp.Message(
                    envelope(event_type, payload), content_type="application/json", content_encoding="utf-8"
                )
                channel.basic_publish_confirm(message, exchange=exchange, routing_key=queue, mandatory=True)
            return {"published": len(request["notifications"])}
        if op == "drain":
            return _drain(connection, queue, list(request.get("expect", [])), float(request.get("timeout", 0)))
        if op == "purge":
            exists, _ = _exists(connection, queue)
            return {"exists": exists, "purged": int(connection.channel().queue_purge(queue)) if exists else 0}
        if op == "delete":
            exists, count = _exists(connection, queue)
            if exists:
                connection.channel().queue_delete(queue)
            return {"exists": exists, "deleted_messages": count}
    raise ValueError(f"unknown op {op!r}")


def run(request_json: str) -> None:
    print(json.dumps(handle(json.loads(request_json))))
