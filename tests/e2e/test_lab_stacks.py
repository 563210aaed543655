"""up / preview / update / destroy of each lab stack, for real, checked from outside Pulumi.

The tests of one stack run in order on one deployment (class-scoped), and each stack
ends destroyed, so the next one starts from a controller that destroy left clean.
"""

from __future__ import annotations

import configparser
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import pytest

from lab.controller import Lab
from lab.stacks import LAB_STACKS, PulumiCli, test_image, write_stack
from tests.e2e import cloud
from tests.e2e.conftest import Timer

GLANCE_URL = "http://127.0.0.1:9292"
API_CONF = "/etc/glance/glance-api.conf"
UNIT = "glance-api.service"


@dataclass
class Deployment:
    stack: str
    pulumi: PulumiCli
    lab: Lab
    outputs: list[str] = field(default_factory=list)  # stdout+stderr of every up/destroy
    controller_argv: set[str] = field(default_factory=set)
    secrets: dict[str, str] = field(default_factory=dict)
    image_id: str = ""

    def cli(self, *args: str) -> str:
        result = self.pulumi.run(*args, "--stack", self.stack, check=False)
        assert result.returncode == 0, f"pulumi {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        self.outputs.append(result.stdout + result.stderr)
        return result.stdout

    def ssh(self, command: str) -> str:
        return self.lab.ssh(command).stdout

    @property
    def engine(self) -> str:
        return str(LAB_STACKS[self.stack]["glance:dbEngine"])

    def admin(self) -> cloud.Session:
        keystone = self.lab.connection["keystone"]
        return cloud.login(keystone["auth_url"], keystone["admin_user"], keystone["admin_password"], "admin")

    def sql(self, query: str) -> str:
        if self.engine == "mysql":
            return self.ssh(f"mysql -N -B -e {json.dumps(query)}")
        return self.ssh(f"runuser -u postgres -- psql -At -c {json.dumps(query)}")


class ArgvWatcher:
    """Samples every process's argv on the controller while a deploy runs."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.is_set():
            result = self.deployment.lab.ssh("ps -eo args --no-headers", check=False)
            self.deployment.controller_argv.update(result.stdout.splitlines())
            self.stop.wait(0.2)

    def __enter__(self) -> ArgvWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def read_api_conf(deployment: Deployment) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
    parser.read_string(deployment.ssh(f"cat {API_CONF}"))
    return parser


@pytest.fixture(scope="class", params=sorted(LAB_STACKS))
def deployment(request: pytest.FixtureRequest, lab_host: Lab, pulumi_cli: PulumiCli) -> Iterator[Deployment]:
    stack = request.param
    write_stack(stack, pulumi_cli, lab_host.connection, test_image())
    deployment = Deployment(stack, pulumi_cli, lab_host)
    yield deployment
    # Whatever happened, leave nothing behind for the next stack.
    pulumi_cli.run("destroy", "--yes", "--skip-preview", "--stack", stack, check=False)
    pulumi_cli.run("stack", "rm", "--yes", "--force", stack, check=False)


@pytest.mark.e2e
class TestLabStack:
    def test_up_from_nothing(self, deployment: Deployment) -> None:
        with Timer(f"{deployment.stack}: up"), ArgvWatcher(deployment):
            deployment.cli("up", "--yes", "--skip-preview")
        assert deployment.ssh(f"systemctl is-enabled {UNIT}").strip() == "enabled"
        assert deployment.ssh(f"systemctl is-active {UNIT}").strip() == "active"
        assert deployment.ssh(f"stat -c '%U:%G %a' {API_CONF}").strip() == "root:glance 640"

    def test_glance_service_user_is_authenticated_through_keystone(self, deployment: Deployment) -> None:
        conf = read_api_conf(deployment)
        authtoken = conf["keystone_authtoken"]
        password = authtoken["password"].replace("$$", "$")
        deployment.secrets["glance password"] = password
        deployment.secrets["db password"] = unquote(urlsplit(conf["database"]["connection"]).password or "")
        if conf.has_section("oslo_limit"):
            deployment.secrets["limits password"] = conf["oslo_limit"]["password"].replace("$$", "$")
        session = cloud.login(deployment.lab.connection["keystone"]["auth_url"], "glance", password, "service")
        assert isinstance(session.get(f"{GLANCE_URL}/v2/images")["images"], list)

    def test_image_is_active_and_its_bytes_are_in_the_store(self, deployment: Deployment) -> None:
        images = deployment.admin().get(f"{GLANCE_URL}/v2/images?name=cirros")["images"]
        assert len(images) == 1
        image = images[0]
        assert (image["status"], image["disk_format"], image["container_format"], image["visibility"]) == (
            "active",
            "qcow2",
            "bare",
            "public",
        )
        deployment.image_id = image["id"]
        stored = deployment.ssh(f"stat -c %s /var/lib/glance/images/{image['id']}").strip()
        assert int(stored) == image["size"] == test_image().stat().st_size

    def test_database_has_the_glance_tables(self, deployment: Deployment) -> None:
        if deployment.engine == "mysql":
            tables = deployment.ssh("mysql -N -B -e 'SHOW TABLES' glance").split()
        else:
            tables = deployment.ssh(
                "runuser -u postgres -- psql -d glance -At -c "
                "\"SELECT tablename FROM pg_tables WHERE schemaname = 'public'\""
            ).split()
        assert {"images", "image_locations", "image_properties", "alembic_version"} <= set(tables)

    def test_keystone_has_user_role_service_and_endpoints(self, deployment: Deployment) -> None:
        admin = deployment.admin()
        users = admin.keystone("/users?name=glance")["users"]
        assert len(users) == 1
        assignments = admin.keystone(f"/role_assignments?user.id={users[0]['id']}&include_names")["role_assignments"]
        assert any(a["role"]["name"] == "admin" and a["scope"]["project"]["name"] == "service" for a in assignments), (
            assignments
        )
        services = admin.keystone("/services?type=image")["services"]
        assert [s["name"] for s in services] == ["glance"]
        endpoints = admin.keystone(f"/endpoints?service_id={services[0]['id']}")["endpoints"]
        assert sorted(e["interface"] for e in endpoints) == ["admin", "internal", "public"]
        assert {e["url"] for e in endpoints} == {GLANCE_URL}

    def test_limits_are_enforced_when_enabled(self, deployment: Deployment) -> None:
        if "glance:keystoneLimits" not in LAB_STACKS[deployment.stack]:
            pytest.skip(f"{deployment.stack} does not enable Keystone limits")
        admin = deployment.admin()
        service = admin.keystone("/services?type=image")["services"][0]
        limits = admin.keystone(f"/registered_limits?service_id={service['id']}")["registered_limits"]
        assert {limit["resource_name"] for limit in limits} == {
            "image_size_total",
            "image_stage_total",
            "image_count_total",
            "image_count_uploading",
        }
        # The admin project already holds the CirrOS image; image_count_total is 1.
        over_limit = admin.status_of(
            "POST",
            f"{GLANCE_URL}/v2/images",
            {"name": "one-too-many", "disk_format": "raw", "container_format": "bare"},
        )
        assert over_limit == 413

    def test_second_preview_and_up_change_nothing(self, deployment: Deployment) -> None:
        with Timer(f"{deployment.stack}: preview (no changes)"):
            deployment.cli("preview", "--expect-no-changes", "--diff")
        with Timer(f"{deployment.stack}: up (no changes)"):
            deployment.cli("up", "--yes", "--expect-no-changes", "--skip-preview")

    def test_option_change_touches_only_config_and_restart(self, deployment: Deployment) -> None:
        started_before = deployment.ssh(f"systemctl show -p ActiveEnterTimestampMonotonic --value {UNIT}")
        deployment.pulumi.run("config", "set", "--stack", deployment.stack, "glance:debug", "true")
        plan = json.loads(deployment.cli("preview", "--json"))
        changed = {
            step["urn"].rsplit("::", 1)[-1]: step["op"] for step in plan["steps"] if step["op"] not in ("same", "read")
        }
        assert {"glance-config-glance-api", "glance-restart"} <= set(changed), changed
        assert set(changed) <= {"glance-config-glance-api", "glance-ownership", "glance-restart", "glance-ready"}, (
            changed
        )
        with Timer(f"{deployment.stack}: update (one option)"):
            deployment.cli("up", "--yes", "--skip-preview")
        assert read_api_conf(deployment)["DEFAULT"]["debug"] == "True"
        started_after = deployment.ssh(f"systemctl show -p ActiveEnterTimestampMonotonic --value {UNIT}")
        assert started_after != started_before
        image = deployment.admin().get(f"{GLANCE_URL}/v2/images/{deployment.image_id}")
        assert image["status"] == "active"

    def test_no_secret_in_state_output_or_controller_argv(self, deployment: Deployment) -> None:
        connection = deployment.lab.connection
        values = {
            **deployment.secrets,
            "keystone admin": connection["keystone"]["admin_password"],
            "db admin": connection[deployment.engine]["admin_password"],
        }
        with open(connection["ssh"]["private_key_path"]) as key:
            key_lines = [line for line in key.read().splitlines() if len(line) > 40]
        exported = deployment.cli("stack", "export")
        haystacks = {"stack export": exported, "up/destroy output": "\n".join(deployment.outputs)}
        haystacks["controller argv"] = "\n".join(deployment.controller_argv)
        assert len(deployment.controller_argv) > 20, "the argv watcher saw too little to prove anything"
        for where, text in haystacks.items():
            for what, value in values.items():
                assert value and value not in text, f"{what} found in {where}"
            assert not any(line in text for line in key_lines), f"ssh key found in {where}"

    def test_destroy_leaves_nothing(self, deployment: Deployment) -> None:
        with Timer(f"{deployment.stack}: destroy"):
            deployment.cli("destroy", "--yes", "--skip-preview")
        admin = deployment.admin()
        assert admin.keystone("/users?name=glance")["users"] == []
        assert admin.keystone("/services?type=image")["services"] == []
        assert not [e for e in admin.keystone("/endpoints")["endpoints"] if e["url"] == GLANCE_URL]
        assert admin.keystone("/registered_limits")["registered_limits"] == []
        assert admin.keystone("/users?name=service-oslo")["users"] == []
        if deployment.engine == "mysql":
            assert deployment.sql("SHOW DATABASES LIKE 'glance'").strip() == ""
            assert deployment.sql("SELECT User FROM mysql.user WHERE User = 'glance'").strip() == ""
        else:
            assert deployment.sql("SELECT 1 FROM pg_database WHERE datname = 'glance'").strip() == ""
            assert deployment.sql("SELECT 1 FROM pg_roles WHERE rolname = 'glance'").strip() == ""
            hba = deployment.lab.connection["postgresql"]["hba_path"]
            assert "glance-pulumi" not in deployment.ssh(f"cat {hba}")
        assert deployment.lab.ssh(f"systemctl is-active {UNIT}", check=False).stdout.strip() != "active"
        assert deployment.lab.ssh(f"systemctl is-enabled {UNIT}", check=False).stdout.strip() != "enabled"
        assert deployment.lab.ssh(f"test -e {API_CONF}", check=False).returncode != 0
        assert deployment.lab.ssh("test -e /var/lib/glance/images", check=False).returncode != 0
