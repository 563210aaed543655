"""Applies the program's declared resources to the lab controller as they are registered.

Registration happens in the engine's dependency order, so each resource is created once
what it depends on exists, with the inputs the program gave it: remote commands over SSH
with their standard input, Keystone objects through the Keystone API, database objects as
SQL run by the database superuser on the controller, the image through the Glance API.
Deleting walks the creations backwards.

Pulumi-command semantics are kept: a changed command re-runs `update` (else `create`), a
changed trigger replaces it (create the new, then delete the old). Any other change is refused loudly.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from lab.cluster import Cluster
from lab.controller import Lab
from lab.standin import keystone
from lab.standin.program import ROOT, plain

GLANCE_URL = "http://127.0.0.1:9292"

RANDOM_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass
class Applied:
    type: str
    name: str
    id: str
    inputs: dict[str, Any]
    state: dict[str, Any]


def _pg_text(value: str) -> str:
    # standard_conforming_strings is on (PostgreSQL's default): only quotes are doubled.
    return "'" + value.replace("'", "''") + "'"


# Where a resource's inputs note the name of the explicit provider it was registered with.
PROVIDER = "__provider"


class LabExecutor(pulumi.runtime.Mocks):
    def __init__(self, lab: Lab | Cluster, previous: list[Applied] | None = None) -> None:
        self.lab = lab
        self.previous = {(a.type, a.name): a for a in previous or []}
        self.applied: list[Applied] = []
        self.operations: dict[str, str] = {}  # resource name -> create/update/replace/same
        self.command_output: list[str] = []
        self._lock = threading.Lock()
        self._admin: keystone.Session | None = None
        # Remote command -> the host it runs on (a cluster lab has several controllers).
        self._hosts: dict[str, str] = {
            a.name: a.inputs["connection"]["host"] for a in previous or [] if "connection" in a.inputs
        }
        self.glance_url = lab.connection.get("load_balancer", {}).get("url", GLANCE_URL)

    # ---- the mocks interface ---------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = plain(args.inputs)
        if args.provider:  # urn::id of an explicit provider: the account a resource is made in
            inputs[PROVIDER] = args.provider.rsplit("::", 2)[-2]
        old = self.previous.get((args.typ, args.name))
        if old is not None and old.inputs == inputs:
            return self._record(old, "same")
        if args.typ.startswith("pulumi:providers:") or not args.custom:
            return self._record(Applied(args.typ, args.name, f"{args.name}-id", inputs, inputs), "same")
        if old is not None:
            return self._update(old, inputs)
        resource_id, outputs = self._creators()[args.typ](args.name, inputs)
        return self._record(Applied(args.typ, args.name, resource_id, inputs, {**inputs, **outputs}), "create")

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        keystone = self.lab.connection["keystone"]["auth_url"]
        if args.token == "openstack:identity/getProject:getProject":
            found = self.admin().get(f"{keystone}/projects?name={args.args['name']}")["projects"]
        elif args.token == "openstack:identity/getRole:getRole":
            found = self.admin().get(f"{keystone}/roles?name={args.args['name']}")["roles"]
        else:
            raise AssertionError(f"unexpected invoke {args.token}")
        assert len(found) == 1, (args.token, args.args, found)
        return {"id": found[0]["id"], "name": found[0]["name"]}, []

    # ---- bookkeeping -----------------------------------------------------------------------

    def _record(self, applied: Applied, operation: str) -> tuple[str, dict[str, Any]]:
        with self._lock:
            self.applied.append(applied)
            self.operations[applied.name] = operation
        return applied.id, applied.state

    def admin(self) -> keystone.Session:
        if self._admin is None:
            self._admin = keystone.admin_login(self.lab.connection)
        return self._admin

    def destroy(self) -> None:
        """Delete everything this applier holds, newest first."""
        deleters = self._deleters()
        for applied in reversed(self.applied):
            if applied.type in deleters:
                deleters[applied.type](applied)
        self.applied.clear()

    # ---- updates ---------------------------------------------------------------------------

    def _update(self, old: Applied, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if not old.type.startswith("command:"):
            raise AssertionError(f"{old.name} ({old.type}) would change: {old.inputs} -> {inputs}")
        replaced = inputs.get("triggers") != old.inputs.get("triggers")
        script = inputs["create"] if replaced else inputs.get("update") or inputs["create"]
        stdout = self.run_command(old.type, old.name, script, inputs.get("stdin"))
        if replaced:
            if old.inputs.get("delete"):
                self.run_command(old.type, old.name, old.inputs["delete"], old.inputs.get("stdin"))
            operation, resource_id = "replace", f"{old.name}-{secrets.token_hex(4)}"
        else:
            operation, resource_id = "update", old.id
        return self._record(Applied(old.type, old.name, resource_id, inputs, {**inputs, "stdout": stdout}), operation)

    # ---- creators and deleters by type -----------------------------------------------------

    def _creators(self) -> dict[str, Callable[[str, dict[str, Any]], tuple[str, dict[str, Any]]]]:
        return {
            "random:index/randomPassword:RandomPassword": self._random_password,
            "random:index/randomBytes:RandomBytes": self._random_bytes,
            "command:remote:Command": lambda name, inputs: self._command("command:remote:Command", name, inputs),
            "command:local:Command": lambda name, inputs: self._command("command:local:Command", name, inputs),
            "mysql:index/database:Database": self._mysql_database,
            "postgresql:index/role:Role": self._pg_role,
            "postgresql:index/database:Database": self._pg_database,
            "postgresql:index/grant:Grant": self._pg_grant,
            "openstack:identity/user:User": self._keystone_user,
            "openstack:identity/roleAssignment:RoleAssignment": self._role_assignment,
            "openstack:identity/serviceV3:ServiceV3": self._service,
            "openstack:identity/endpointV3:EndpointV3": self._endpoint,
            "openstack:identity/registeredLimitV3:RegisteredLimitV3": self._registered_limit,
            "openstack:images/image:Image": self._image,
            "openstack:objectstorage/container:Container": self._container,
        }

    def _deleters(self) -> dict[str, Callable[[Applied], None]]:
        keystone = self.lab.connection["keystone"]["auth_url"]

        def keystone_delete(path: str) -> Callable[[Applied], None]:
            return lambda a: self._expect(self.admin().send("DELETE", f"{keystone}/{path}/{a.id}"), 204, 404)

        return {
            "random:index/randomPassword:RandomPassword": lambda a: None,
            "random:index/randomBytes:RandomBytes": lambda a: None,
            "command:remote:Command": self._delete_command,
            "command:local:Command": self._delete_command,
            "mysql:index/database:Database": lambda a: self._mysql(f"DROP DATABASE IF EXISTS `{a.inputs['name']}`;"),
            "postgresql:index/role:Role": lambda a: self._pg(f'DROP ROLE IF EXISTS "{a.inputs["name"]}";'),
            "postgresql:index/database:Database": lambda a: self._pg(
                f'DROP DATABASE IF EXISTS "{a.inputs["name"]}" WITH (FORCE);'
            ),
            "postgresql:index/grant:Grant": lambda a: None,  # dropping the database takes its grants
            "openstack:identity/user:User": keystone_delete("users"),
            "openstack:identity/roleAssignment:RoleAssignment": lambda a: self._expect(
                self.admin().send("DELETE", self._assignment_url(a.inputs)), 204, 404
            ),
            "openstack:identity/serviceV3:ServiceV3": keystone_delete("services"),
            "openstack:identity/endpointV3:EndpointV3": keystone_delete("endpoints"),
            "openstack:identity/registeredLimitV3:RegisteredLimitV3": keystone_delete("registered_limits"),
            "openstack:objectstorage/container:Container": lambda a: self._expect(
                self._account_of(a.inputs).send("DELETE", a.state["url"]), 204, 404
            ),
            "openstack:images/image:Image": lambda a: self._expect(
                self.admin().send("DELETE", f"{self.glance_url}/v2/images/{a.id}"), 204, 404
            ),
        }

    @staticmethod
    def _expect(result: tuple[int, Any], *statuses: int) -> Any:
        status, body = result
        assert status in statuses, (status, body)
        return body

    def _random_password(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        alphabet = RANDOM_ALPHABET + inputs.get("overrideSpecial", "")
        return name, {"result": "".join(secrets.choice(alphabet) for _ in range(int(inputs["length"])))}

    def _random_bytes(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        data = secrets.token_bytes(int(inputs["length"]))
        return name, {"base64": base64.b64encode(data).decode(), "hex": data.hex()}

    def run_command(self, type_: str, name: str, script: str, stdin: str | None) -> str:
        if type_ == "command:remote:Command":
            host = self._hosts.get(name)
            result = self.lab.ssh(script, input=stdin or "", check=False, host=host)
        else:
            result = subprocess.run(
                ["/bin/sh", "-c", script], input=stdin or "", capture_output=True, text=True, cwd=ROOT, timeout=600
            )
        self.command_output.append(result.stdout + result.stderr)
        assert result.returncode == 0, f"{name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def _command(self, type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if "connection" in inputs:  # remote: the host its connection names
            self._hosts[name] = inputs["connection"]["host"]
            # As pulumi-command: the step runs only where the host presents the pinned key (the
            # lab's own ssh trusts exactly the image's key).
            pinned = inputs["connection"].get("hostKey")
            assert pinned in (None, self.lab.connection["ssh"]["host_key"]), f"{name}: host key mismatch"
        stdout = self.run_command(type_, name, inputs["create"], inputs.get("stdin"))
        return f"{name}-{secrets.token_hex(4)}", {"stdout": stdout, "stderr": ""}

    def _delete_command(self, applied: Applied) -> None:
        if applied.inputs.get("delete"):
            self.run_command(applied.type, applied.name, applied.inputs["delete"], applied.inputs.get("stdin"))

    def _mysql(self, sql: str) -> None:
        self.lab.ssh("mysql", input=sql)

    def _pg(self, sql: str) -> None:
        self.lab.ssh("runuser -u postgres -- psql -v ON_ERROR_STOP=1", input=sql)

    def _mysql_database(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        charset = f"CHARACTER SET {inputs['defaultCharacterSet']} COLLATE {inputs['defaultCollation']}"
        self._mysql(f"CREATE DATABASE `{inputs['name']}` {charset};")
        return inputs["name"], {}

    def _pg_role(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        login = "LOGIN" if inputs.get("login") else "NOLOGIN"
        self._pg(f'CREATE ROLE "{inputs["name"]}" {login} PASSWORD {_pg_text(inputs["password"])};')
        return inputs["name"], {}

    def _pg_database(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self._pg(f'CREATE DATABASE "{inputs["name"]}" OWNER "{inputs["owner"]}";')
        return inputs["name"], {}

    def _pg_grant(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        privileges = ", ".join(inputs["privileges"])
        self._pg(f'GRANT {privileges} ON DATABASE "{inputs["database"]}" TO "{inputs["role"]}";')
        return name, {}

    def _keystone_create(self, collection: str, kind: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        keystone = self.lab.connection["keystone"]["auth_url"]
        created = self._expect(self.admin().send("POST", f"{keystone}/{collection}", {kind: body}), 201)
        return str(created[kind]["id"]), {}

    def _keystone_user(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        body = {"name": inputs["name"], "domain_id": inputs["domainId"], "password": inputs["password"]}
        return self._keystone_create("users", "user", {**body, "enabled": True})

    def _assignment_url(self, inputs: dict[str, Any]) -> str:
        keystone = self.lab.connection["keystone"]["auth_url"]
        return f"{keystone}/projects/{inputs['projectId']}/users/{inputs['userId']}/roles/{inputs['roleId']}"

    def _role_assignment(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self._expect(self.admin().send("PUT", self._assignment_url(inputs)), 204)
        return name, {}

    def _service(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        body = {"name": inputs["name"], "type": inputs["type"], "description": inputs["description"]}
        return self._keystone_create("services", "service", {**body, "enabled": True})

    def _endpoint(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        body = {
            "service_id": inputs["serviceId"],
            "interface": inputs["interface"],
            "url": inputs["url"],
            "region_id": inputs["endpointRegion"],
        }
        return self._keystone_create("endpoints", "endpoint", body)

    def _registered_limit(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        keystone = self.lab.connection["keystone"]["auth_url"]
        limit = {
            "service_id": inputs["serviceId"],
            "resource_name": inputs["resourceName"],
            "default_limit": int(inputs["defaultLimit"]),  # protobuf numbers arrive as floats
            "region_id": inputs["region"],
        }
        body = {"registered_limits": [limit]}
        created = self._expect(self.admin().send("POST", f"{keystone}/registered_limits", body), 201)
        return str(created["registered_limits"][0]["id"]), {}

    def _account_of(self, inputs: dict[str, Any]) -> keystone.Session:
        """A session as the explicit provider of a resource authenticates (its user and project)."""
        provider = next(a.inputs for a in self.applied if a.name == inputs[PROVIDER])
        return keystone.login(
            provider["authUrl"],
            provider["userName"],
            provider["password"],
            provider["tenantName"],
            provider["userDomainId"],
        )

    def _container(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        account = self._account_of(inputs)
        url = f"{account.endpoint('object-store')}/{inputs['name']}"
        self._expect(account.send("PUT", url), 201, 202)
        return str(inputs["name"]), {"url": url}

    def _image(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        record = {
            key: inputs[field]
            for key, field in (
                ("name", "name"),
                ("disk_format", "diskFormat"),
                ("container_format", "containerFormat"),
                ("visibility", "visibility"),
            )
        }
        image = self._expect(self.admin().send("POST", f"{self.glance_url}/v2/images", record), 201)
        data = Path(inputs["localFilePath"]).read_bytes()
        url = f"{self.glance_url}/v2/images/{image['id']}/file"
        self._expect(self.admin().send("PUT", url, data, "application/octet-stream"), 204)
        deadline = time.monotonic() + 120
        while self.admin().get(f"{self.glance_url}/v2/images/{image['id']}")["status"] != "active":
            assert time.monotonic() < deadline, "image never became active"
            time.sleep(1)
        return str(image["id"]), {}
