"""Tiny HTTP stand-ins for Keystone and glance-api on loopback, for the remote scripts' tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "token-123"


@dataclass
class FakeCloud:
    """Keystone + Glance behaviour the scripts rely on, with knobs for failure modes."""

    password: str
    unhealthy_polls: int = 0
    # oslo.middleware's healthcheck while /etc/glance/healthcheck_disable exists.
    drained: bool = False
    reject_tokens: bool = False
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    system_grants: set[tuple[str, str]] = field(default_factory=set)


def _handler(cloud: FakeCloud) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            return self.headers.get("X-Auth-Token") == TOKEN

        def do_GET(self) -> None:
            cloud.requests.append(("GET", self.path, None))
            if self.path == "/healthcheck":
                if cloud.drained:
                    self.send_response(503)
                    self.send_header("Content-Length", "16")
                    self.end_headers()
                    self.wfile.write(b"DISABLED BY FILE")
                    return
                if cloud.unhealthy_polls > 0:
                    cloud.unhealthy_polls -= 1
                    return self._reply(503)
                return self._reply(200)
            if not self._authorized():
                return self._reply(401)
            if self.path.startswith("/v2/images"):
                return self._reply(200, {"images": []})
            if self.path == "/v3/roles?name=reader":
                return self._reply(200, {"roles": [{"id": "reader-id", "name": "reader"}]})
            return self._reply(404)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            cloud.requests.append(("POST", self.path, body))
            if self.path != "/v3/auth/tokens":
                return self._reply(404)
            password = body["auth"]["identity"]["password"]["user"]["password"]
            if cloud.reject_tokens or password != cloud.password:
                return self._reply(401)
            return self._reply(201, {"token": {}}, {"X-Subject-Token": TOKEN})

        def _system_grant(self) -> tuple[str, str] | None:
            parts = self.path.split("/")
            if not self._authorized() or parts[1:4] != ["v3", "system", "users"] or parts[5] != "roles":
                return None
            return parts[4], parts[6]

        def do_PUT(self) -> None:
            cloud.requests.append(("PUT", self.path, None))
            grant = self._system_grant()
            if grant is None:
                return self._reply(401)
            cloud.system_grants.add(grant)
            return self._reply(204)

        def do_DELETE(self) -> None:
            cloud.requests.append(("DELETE", self.path, None))
            grant = self._system_grant()
            if grant is None or grant not in cloud.system_grants:
                return self._reply(404)
            cloud.system_grants.discard(grant)
            return self._reply(204)

    return Handler


@contextmanager
def serve(cloud: FakeCloud) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cloud))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
