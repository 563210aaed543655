"""Wait until Glance answers /healthcheck and one Keystone-authenticated call.

/healthcheck alone is 200 even when glance-api cannot validate tokens (a wrong
auth_url makes every real call 401), so readiness also lists images with a token
issued to the Glance service user. A drained host's /healthcheck is 503 "DISABLED BY
FILE", which counts as up: the undrain step comes after this gate. Parameters come as
JSON on standard input.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

# glance-api answers a few seconds after a restart: poll often, so the gate adds little to it.
POLL_SECONDS = 0.5


def wait_for(check: Callable[[], None], what: str, deadline: float) -> None:
    while True:
        try:
            check()
            return
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"glance not ready: {what}: {exc}") from None
            time.sleep(POLL_SECONDS)


def check_health(glance_url: str) -> None:
    try:
        with urllib.request.urlopen(f"{glance_url}/healthcheck", timeout=10) as response:
            if response.status != 200:
                raise ValueError(f"healthcheck returned {response.status}")
    except urllib.error.HTTPError as error:
        # A drained host (healthcheck_disable) answers so until its undrain step: it is up.
        if error.code != 503 or b"DISABLED BY FILE" not in error.read():
            raise


def issue_token(params: dict[str, Any]) -> str:
    domain = {"id": params["domain_id"]}
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": params["user"], "domain": domain, "password": params["password"]}},
            },
            "scope": {"project": {"name": params["project"], "domain": domain}},
        }
    }
    request = urllib.request.Request(
        f"{params['auth_url']}/v3/auth/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["X-Subject-Token"])


def list_images(glance_url: str, token: str) -> None:
    request = urllib.request.Request(f"{glance_url}/v2/images?limit=1", headers={"X-Auth-Token": token})
    with urllib.request.urlopen(request, timeout=10) as response:
        json.load(response)


def main() -> None:
    params = json.load(sys.stdin)
    deadline = time.monotonic() + float(params["timeout"])
    glance_url = params["glance_url"]
    wait_for(lambda: check_health(glance_url), "healthcheck", deadline)
    wait_for(lambda: list_images(glance_url, issue_token(params)), "authenticated image list", deadline)
    print("glance ready")


if __name__ == "__main__":
    main()
