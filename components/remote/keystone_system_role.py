"""Grant or revoke a system-scope role for a Keystone user (`grant` / `revoke`).

Pulumi's RoleAssignment has no system scope, yet the oslo_limit user needs the
system-scope reader role. This runs as a command resource beside the engine and
speaks the Keystone API directly. Parameters come as JSON on standard input.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any


def admin_token(params: dict[str, Any]) -> str:
    domain = {"id": params["domain_id"]}
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": params["admin_user"],
                        "domain": domain,
                        "password": params["admin_password"],
                    }
                },
            },
            "scope": {"project": {"name": params["admin_project"], "domain": domain}},
        }
    }
    request = urllib.request.Request(
        f"{params['auth_url']}/auth/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.headers["X-Subject-Token"])


def call(params: dict[str, Any], token: str, method: str, path: str) -> Any:
    request = urllib.request.Request(f"{params['auth_url']}{path}", method=method, headers={"X-Auth-Token": token})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
        return json.loads(body) if body else None


def role_id(params: dict[str, Any], token: str) -> str:
    roles = call(params, token, "GET", f"/roles?name={params['role']}")["roles"]
    if not roles:
        raise SystemExit(f"keystone has no role named {params['role']!r}")
    return str(roles[0]["id"])


def main(action: str) -> None:
    params = json.load(sys.stdin)
    token = admin_token(params)
    path = f"/system/users/{params['user_id']}/roles/{role_id(params, token)}"
    if action == "grant":
        call(params, token, "PUT", path)
    else:
        try:
            call(params, token, "DELETE", path)
        except urllib.error.HTTPError as exc:
            # Already gone (the user was deleted, or the grant by hand): nothing to undo.
            if exc.code != 404:
                raise
    print(f"system role {params['role']} {action} for user {params['user_id']}: done")


if __name__ == "__main__":
    main(sys.argv[1])
