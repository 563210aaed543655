"""The lab's RabbitMQ settings and notification envelopes, without booting anything."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from lab.amqp_remote import decode, envelope
from lab.session import rabbitmq_settings


def test_transport_url_quotes_user_and_password() -> None:
    secrets_ = {"rabbitmq_user": "glance-notify", "rabbitmq_password": "p@ss/w:rd%?#"}
    settings = rabbitmq_settings("10.77.0.11", secrets_)
    assert settings == {
        "host": "10.77.0.11",
        "port": 5672,
        "user": "glance-notify",
        "password": "p@ss/w:rd%?#",
        "transport_url": "rabbit://glance-notify:p%40ss%2Fw%3Ard%25%3F%23@10.77.0.11:5672/",
    }
    # As oslo.messaging's TransportURL.parse reads it (urlparse, then unquote).
    parsed = urllib.parse.urlparse(settings["transport_url"])
    assert (urllib.parse.unquote(parsed.username or ""), urllib.parse.unquote(parsed.password or "")) == (
        "glance-notify",
        "p@ss/w:rd%?#",
    )
    assert (parsed.hostname, parsed.port, parsed.path) == ("10.77.0.11", 5672, "/")


def test_envelope_round_trip() -> None:
    payload = {"id": "1c0e", "status": "active", "tags": ["a"], "size": 16}
    body = envelope("image.activate", payload)
    outer = json.loads(body)
    assert outer["oslo.version"] == "2.0" and isinstance(outer["oslo.message"], str)
    inner = json.loads(outer["oslo.message"])
    assert (inner["priority"], inner["publisher_id"]) == ("INFO", "image.controller")
    assert decode(body) == ("image.activate", payload)


def test_decode_takes_unenveloped_messages_and_refuses_others() -> None:
    assert decode(json.dumps({"event_type": "image.create", "payload": {"id": "x"}})) == ("image.create", {"id": "x"})
    for body in ('{"oslo.message": "[]"}', '{"event_type": "image.create"}', "[1]"):
        with pytest.raises(ValueError, match=r"not an oslo\.messaging notification"):
            decode(body)
    with pytest.raises(ValueError):
        decode("not json")
