"""Just enough of the Keystone and Glance APIs, spoken from the host.

Standard library only, not keystoneauth1/openstacksdk: the stand-in runs from the program's
own requirements, and the tests assert Glance's raw status codes and bodies, which an SDK
turns into exceptions and objects.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Session:
    keystone_url: str  # .../v3
    token: str

    def get(self, url: str) -> Any:
        request = urllib.request.Request(url, headers={"X-Auth-Token": self.token})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def keystone(self, path: str) -> Any:
        return self.get(f"{self.keystone_url}{path}")

    def send(
        self,
        method: str,
        url: str,
        body: Any = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Status and decoded JSON body (None when empty, bytes when not JSON); HTTP errors
        are returned, not raised."""
        data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={"X-Auth-Token": self.token, "Content-Type": content_type, **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                raw = response.read()
                if response.headers.get_content_type() != "application/json":
                    return int(response.status), raw or None
                return int(response.status), json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def endpoint(self, service_type: str, interface: str = "public") -> str:
        """The URL of `service_type` in this token's catalog (project-scoped: with its account)."""
        for service in self.keystone("/auth/catalog")["catalog"]:
            if service["type"] == service_type:
                return str(next(e["url"] for e in service["endpoints"] if e["interface"] == interface))
        raise LookupError(f"no {service_type} service in the catalog")

    def status_of(self, method: str, url: str, body: dict[str, Any] | None = None) -> int:
        return self.send(method, url, body)[0]


def login(keystone_url: str, user: str, password: str, project: str | None, domain_id: str = "default") -> Session:
    """A token scoped to `project`, or to the whole system when `project` is None."""
    domain = {"id": domain_id}
    scope: dict[str, Any] = {"project": {"name": project, "domain": domain}} if project else {"system": {"all": True}}
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": domain, "password": password}},
            },
            "scope": scope,
        }
    }
    request = urllib.request.Request(
        f"{keystone_url}/auth/tokens", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return Session(keystone_url, str(response.headers["X-Subject-Token"]))


def admin_login(connection: dict[str, Any]) -> Session:
    """A project-scoped admin session from the lab's connection settings."""
    credentials = connection["keystone"]
    return login(credentials["auth_url"], credentials["admin_user"], credentials["admin_password"], "admin")
