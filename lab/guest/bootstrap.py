"""The image build's steps that talk to the services, inside the build container.

Plain Keystone API calls (the openstack CLI would want the new user's password in argv or
on a terminal; it also costs ~2 s per call). Secrets come from the build's secrets file,
never from argv. Runs with the image's /usr/bin/python3: standard library, plus Debian's
python3-amqp for RabbitMQ.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .render import LOOPBACK, SWIFT_STORAGE_SERVERS, NodePlan

REGION = "RegionOne"


def _keystone_url(plan: NodePlan) -> str:
    return f"http://{LOOPBACK}:{plan.ports['keystone']}/v3"


def api_call(
    url: str, method: str = "GET", body: Any = None, token: str | None = None, timeout: float = 60
) -> tuple[str | None, Any]:
    """(X-Subject-Token, JSON body or None) of one Keystone API call. The host's lab.session
    uses it too, with its own retries."""
    headers = {"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read()
        return response.headers.get("X-Subject-Token"), (json.loads(text) if text else None)


def password_auth(user: str, password: str, project: str) -> dict[str, Any]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }
    }


def _login(plan: NodePlan, user: str, password: str, project: str) -> tuple[str, Any]:
    token, body = api_call(f"{_keystone_url(plan)}/auth/tokens", "POST", password_auth(user, password, project))
    assert token, "keystone issued no token"
    return token, body


def swift_endpoint(plan: NodePlan) -> str:
    return f"http://{LOOPBACK}:{plan.ports['swift']}/v1/AUTH_%(project_id)s"


def register_swift(plan: NodePlan, secrets: Mapping[str, str]) -> None:
    """Keystone's user `swift` (admin on project service, which the proxy validates tokens
    as), service `swift` (object-store) and its three endpoints."""
    keystone = _keystone_url(plan)
    token, _ = _login(plan, "admin", secrets["keystone_admin_password"], "admin")
    service_project = api_call(f"{keystone}/projects?name=service", token=token)[1]["projects"][0]["id"]
    admin_role = api_call(f"{keystone}/roles?name=admin", token=token)[1]["roles"][0]["id"]
    user = {
        "name": "swift",
        "domain_id": "default",
        "default_project_id": service_project,
        "password": secrets["swift_service_password"],
        "description": "Swift proxy (validates tokens)",
    }
    user_id = api_call(f"{keystone}/users", "POST", {"user": user}, token)[1]["user"]["id"]
    api_call(f"{keystone}/projects/{service_project}/users/{user_id}/roles/{admin_role}", "PUT", token=token)
    service = {"name": "swift", "type": "object-store", "description": "OpenStack Object Storage"}
    service_id = api_call(f"{keystone}/services", "POST", {"service": service}, token)[1]["service"]["id"]
    for interface in ("public", "internal", "admin"):
        endpoint = {"service_id": service_id, "interface": interface, "region_id": REGION, "url": swift_endpoint(plan)}
        api_call(f"{keystone}/endpoints", "POST", {"endpoint": endpoint}, token)
    _login(plan, "swift", secrets["swift_service_password"], "service")  # the proxy's credentials work


def check_swift(plan: NodePlan, secrets: Mapping[str, str]) -> str:
    """End to end: a token of the service project is accepted for its account (the proxy
    validated it with its own credentials) and an anonymous request is refused. Nothing is
    written: the image's /srv/node stays empty. Returns the account's URL."""
    token, body = _login(plan, "swift", secrets["swift_service_password"], "service")
    urls = [
        endpoint["url"]
        for service in body["token"]["catalog"]
        if service["type"] == "object-store"
        for endpoint in service["endpoints"]
        if endpoint["interface"] == "public"
    ]
    assert len(urls) == 1, body["token"]["catalog"]
    head = urllib.request.Request(urls[0], headers={"X-Auth-Token": token}, method="HEAD")
    with urllib.request.urlopen(head, timeout=60) as response:
        assert response.status in (200, 204), response.status
    try:
        urllib.request.urlopen(urllib.request.Request(urls[0], method="HEAD"), timeout=60)
    except urllib.error.HTTPError as error:
        assert error.code == 401, error.code
    else:
        raise AssertionError("swift let an anonymous request in")
    return str(urls[0])


def build_swift_rings(plan: NodePlan) -> None:
    """One ring per storage server: 2^10 partitions, 1 replica, device d1 on loopback."""
    for server in SWIFT_STORAGE_SERVERS:
        builder = Path(f"/etc/swift/{server}.builder")
        builder.unlink(missing_ok=True)
        builder.with_suffix(".ring.gz").unlink(missing_ok=True)
        device = ["--region", "1", "--zone", "1", "--ip", LOOPBACK, "--port", str(plan.ports[f"swift_{server}"])]
        for args in (
            ["create", "10", "1", "1"],
            ["add", *device, "--device", "d1", "--weight", "100"],
            ["rebalance"],
        ):
            subprocess.run(["swift-ring-builder", str(builder), *args], check=True)
        assert builder.with_suffix(".ring.gz").stat().st_size > 0, f"no {server} ring"


def check_xattrs(directory: Path) -> None:
    """The caller can set user.* xattrs in `directory`: the object server keeps an object's
    metadata there, a pickle split into 254-byte values (user.swift.metadata, ...metadata1).
    Checked on the build's filesystem; tests/lab checks a session's overlay."""
    path = directory / ".xattr-probe"
    with open(path, "wb") as probe:
        for name in ("user.swift.metadata", "user.swift.metadata1"):
            os.setxattr(probe.fileno(), name, b"x" * 254)
        ok = os.getxattr(probe.fileno(), "user.swift.metadata1") == b"x" * 254
    path.unlink()
    assert ok, f"user xattrs do not round-trip in {directory}"


def check_rabbitmq(plan: NodePlan, secrets: Mapping[str, str]) -> None:
    """The Glance user is the only one (guest is deleted); it logs in over AMQP with its
    password and may declare; a wrong password is refused."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_users", "--formatter", "json"], capture_output=True, text=True, check=True
    )
    users = [user["user"] for user in json.loads(listed.stdout)]
    assert users == [secrets["rabbitmq_user"]], f"rabbitmq users: {users}"
    amqp = importlib.import_module("amqp")

    def connect(password: str) -> Any:
        connection = amqp.Connection(
            f"{LOOPBACK}:{plan.ports['rabbitmq']}",
            userid=secrets["rabbitmq_user"],
            password=password,
            virtual_host="/",
            connect_timeout=10,
        )
        connection.connect()
        return connection

    with connect(secrets["rabbitmq_password"]) as connection:
        channel = connection.channel()
        channel.exchange_declare("lab-probe", "topic", durable=False, auto_delete=False)
        channel.exchange_delete("lab-probe")
    try:
        connect("wrong-password").close()
    except amqp.exceptions.AccessRefused:
        return
    raise AssertionError("rabbitmq accepted a wrong password")
