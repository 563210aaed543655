"""What a Glance deployment on the lab must look like, checked from outside Pulumi.

Shared by both end-to-end suites: the real engine (test_lab_stacks) and the program's
declared resources applied by the stand-in executor (test_lab_applied).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lab.cluster import Cluster
from lab.controller import Lab
from lab.paths import LOOPBACK, PORTS
from lab.stacks import lab_image_file, stack_definition
from lab.standin import keystone
from lab.standin.executor import GLANCE_URL as GLANCE_URL

API_CONF = "/etc/glance/glance-api.conf"
CREDENTIALS_DIR = "/etc/glance/glance.conf.d"
CREDENTIALS_CONF = f"{CREDENTIALS_DIR}/50-glance-pulumi-credentials.conf"
UNIT = "glance-api.service"
# The single-controller lab or the two-controller cluster: both have connection and ssh(host=).
LabHost = Lab | Cluster
FILE_STORE = "/var/lib/glance/images"
SWIFT_REFERENCES = "/etc/glance/glance-pulumi-swift.conf"
GLANCE_TABLES = {"images", "image_locations", "image_properties", "alembic_version"}
LIMITS = {"image_size_total", "image_stage_total", "image_count_total", "image_count_uploading"}


@dataclass
class Target:
    """One lab stack deployed onto the lab, and what the checks learn along the way."""

    stack: str
    lab: LabHost
    secrets: dict[str, str] = field(default_factory=dict)
    controller_argv: set[str] = field(default_factory=set)
    image_id: str = ""

    @property
    def engine(self) -> str:
        return str(stack_definition(self.stack)["glance:dbEngine"])

    @property
    def limits_enabled(self) -> bool:
        return "glance:keystoneLimits" in stack_definition(self.stack)

    @property
    def stores(self) -> list[dict[str, Any]]:
        """The stack's declared stores, or the one file store the program configures without."""
        declared: list[dict[str, Any]] = stack_definition(self.stack).get("glance:stores", [])
        return declared or [{"id": "file", "type": "file", "path": FILE_STORE}]

    @property
    def default_store(self) -> dict[str, Any]:
        default = stack_definition(self.stack).get("glance:defaultStore", self.stores[0]["id"])
        return next(store for store in self.stores if store["id"] == default)

    def protected_resources(self) -> list[str]:
        """What protectData protects in this stack: the database, file stores, Swift containers."""
        names = ["glance-database"]
        names += [f"glance-image-store-{store['id']}" for store in self.stores if store["type"] == "file"]
        names += [f"glance-{s['id']}-container" for s in self.stores if s.get("createContainer")]
        return names

    def glance_session(self) -> keystone.Session:
        """The glance user in its project, with the password Glance's own config holds."""
        password = oslo_value(api_conf(self)["keystone_authtoken"]["password"])
        return keystone.login(self.lab.connection["keystone"]["auth_url"], "glance", password, "service")

    @property
    def glance_url(self) -> str:
        """The image endpoint: the cluster's load balancer, or the one controller's Glance."""
        return str(self.lab.connection.get("load_balancer", {}).get("url", GLANCE_URL))

    @property
    def hosts(self) -> list[str | None]:
        """The API hosts' addresses (None: the one controller of the single lab)."""
        return [host["address"] for host in self.lab.connection.get("hosts", [])] or [None]

    def ssh(self, command: str, check: bool = True, host: str | None = None) -> str:
        return self.lab.ssh(command, check=check, host=host).stdout

    def admin(self) -> keystone.Session:
        return keystone.admin_login(self.lab.connection)

    def sql(self, query: str) -> str:
        """Run a query as the database superuser inside the controller (SQL on stdin)."""
        if self.engine == "mysql":
            return self.lab.ssh("mysql -N -B", input=query).stdout
        return self.lab.ssh("runuser -u postgres -- psql -At -v ON_ERROR_STOP=1", input=query).stdout

    def known_secrets(self) -> dict[str, str]:
        connection = self.lab.connection
        key_lines = Path(connection["ssh"]["private_key_path"]).read_text().splitlines()
        values = {
            **self.secrets,
            "keystone admin password": connection["keystone"]["admin_password"],
            "db admin password": connection[self.engine]["admin_password"],
        }
        values.update({f"ssh key line {i}": line for i, line in enumerate(key_lines) if len(line) > 40})
        return values


class ArgvWatcher:
    """Samples every process's argv on the controllers while a deploy runs."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.is_set():
            for host in self.target.hosts:
                result = self.target.lab.ssh("ps -eo args --no-headers", check=False, host=host)
                self.target.controller_argv.update(result.stdout.splitlines())
            self.stop.wait(0.2)

    def __enter__(self) -> ArgvWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def api_conf(target: Target) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
    # As glance-api reads it: the main file, then the credentials drop-in over it.
    parser.read_string(target.ssh(f"cat {API_CONF}"))
    parser.read_string(target.ssh(f"cat {CREDENTIALS_CONF}"))
    return parser


def unit_started_at(target: Target) -> str:
    return target.ssh(f"systemctl show -p ActiveEnterTimestampMonotonic --value {UNIT}").strip()


def assert_units_and_config_ownership(target: Target) -> None:
    for host in target.hosts:
        assert_host_units_and_config_ownership(target, host)


def assert_host_units_and_config_ownership(target: Target, host: str | None) -> None:
    assert target.ssh(f"systemctl is-enabled {UNIT}", host=host).strip() == "enabled"
    assert target.ssh(f"systemctl is-active {UNIT}", host=host).strip() == "active"
    files = [(API_CONF, "640"), (CREDENTIALS_CONF, "640"), (CREDENTIALS_DIR, "750")]
    if any(store["type"] == "swift" for store in target.stores):
        files.append((SWIFT_REFERENCES, "640"))
    for path, mode in files:
        assert target.ssh(f"stat -c '%U:%G %a' {path}", host=host).strip() == f"root:glance {mode}", path
    main = configparser.ConfigParser(interpolation=None, default_section="__none__")
    main.read_string(target.ssh(f"cat {API_CONF}", host=host))
    assert not main.has_section("database")
    assert not [section for section in main.sections() if main.has_option(section, "password")]


def oslo_value(text: str) -> str:
    """A value as oslo.config reads it: one pair of matching quotes dropped, $$ a dollar."""
    text = text.strip()
    if text[:1] in ("'", '"') and text[0] == text[-1]:
        text = text[1:-1]
    return text.replace("$$", "$")


def assert_glance_user_authenticates(target: Target) -> None:
    """The glance user logs in with the password in glance-api.conf, and Glance answers it."""
    conf = api_conf(target)
    password = oslo_value(conf["keystone_authtoken"]["password"])
    target.secrets.setdefault("glancePassword", password)
    target.secrets.setdefault("dbPassword", unquote(urlsplit(conf["database"]["connection"]).password or ""))
    if conf.has_section("oslo_limit"):
        target.secrets.setdefault("limitsPassword", oslo_value(conf["oslo_limit"]["password"]))
    session = keystone.login(target.lab.connection["keystone"]["auth_url"], "glance", password, "service")
    assert isinstance(session.get(f"{target.glance_url}/v2/images")["images"], list)


def assert_passwords_as_chosen(target: Target) -> None:
    """Every operator-chosen password logs in where it belongs, exactly as typed."""
    auth_url = target.lab.connection["keystone"]["auth_url"]
    keystone.login(auth_url, "glance", target.secrets["glancePassword"], "service")
    if target.limits_enabled:
        keystone.login(auth_url, "service-oslo", target.secrets["limitsPassword"], None)
    # The glance account over TCP, as Glance connects; the password on stdin, never in argv.
    if target.engine == "mysql":
        variable = "MYSQL_PWD"
        client = f"mysql --protocol=TCP -h {LOOPBACK} -P {PORTS['mysql']} -u glance -N -e 'SELECT 1' glance"
    else:
        variable = "PGPASSWORD"
        client = f"psql -h {LOOPBACK} -p {PORTS['postgresql']} -U glance -d glance -tAc 'SELECT 1'"
    login = f"IFS= read -r {variable}; export {variable}; {client}"
    result = target.lab.ssh(login, input=target.secrets["dbPassword"] + "\n", check=False)
    assert (result.returncode, result.stdout.strip()) == (0, "1"), result.stderr


def assert_still_deployed(target: Target) -> None:
    """Nothing was removed: Glance serves the image, its database and store are there."""
    assert_units_and_config_ownership(target)
    assert_glance_tables(target)
    image = target.admin().get(f"{target.glance_url}/v2/images/{target.image_id}")
    assert image["status"] == "active"
    assert_bytes_in_default_store(target, image)


def assert_image_active_with_bytes_in_store(target: Target) -> None:
    images = target.admin().get(f"{target.glance_url}/v2/images?name=cirros")["images"]
    assert len(images) == 1, images
    image = images[0]
    assert (image["status"], image["disk_format"], image["container_format"], image["visibility"]) == (
        "active",
        "qcow2",
        "bare",
        "public",
    )
    target.image_id = image["id"]
    assert image["size"] == lab_image_file().stat().st_size
    assert_bytes_in_default_store(target, image)


def assert_bytes_in_default_store(target: Target, image: dict[str, Any]) -> None:
    """The image's bytes where its stack's default store keeps them, and nowhere else."""
    store = target.default_store
    if "glance:stores" in stack_definition(target.stack):
        assert image["stores"] == store["id"], image  # multi-store names the store
    expected = hashlib.sha256(lab_image_file().read_bytes()).hexdigest()
    in_file_store = f"{FILE_STORE}/{image['id']}"
    if store["type"] == "file":
        assert target.ssh(f"sha256sum {in_file_store}").split()[0] == expected
        return
    assert store["type"] == "swift", store
    # Swift, asked directly as the account Glance uses: the object named after the image.
    account = target.glance_session()
    status, data = account.send("GET", f"{account.endpoint('object-store')}/{store['container']}/{image['id']}")
    assert status == 200 and isinstance(data, bytes), status
    assert hashlib.sha256(data).hexdigest() == expected
    assert target.lab.ssh(f"test -e {in_file_store}", check=False).returncode != 0


def assert_stores_as_declared(target: Target) -> None:
    """Multi-store stacks: the stores API and an upload to a named store; others: the guides' form."""
    if "glance:stores" in stack_definition(target.stack):
        assert_image_goes_to_the_store_asked_for(target)
        return
    store = api_conf(target)["glance_store"]
    assert (store["stores"], store["default_store"]) == ("file,http", "file")
    assert not api_conf(target).has_option("DEFAULT", "enabled_backends")


def assert_image_goes_to_the_store_asked_for(target: Target) -> None:
    """The multi-store API: an upload with X-Image-Meta-Store lands in that store, not the default."""
    admin = target.admin()
    stores = admin.get(f"{target.glance_url}/v2/info/stores")["stores"]
    assert {s["id"] for s in stores} == {s["id"] for s in target.stores}
    assert [s["id"] for s in stores if s.get("default")] == [target.default_store["id"]]
    other = next(s for s in target.stores if s["id"] != target.default_store["id"])
    record = {"name": "in-the-other-store", "disk_format": "qcow2", "container_format": "bare"}
    status, image = admin.send("POST", f"{target.glance_url}/v2/images", record)
    assert status == 201, image
    try:
        url = f"{target.glance_url}/v2/images/{image['id']}/file"
        upload = admin.send(
            "PUT", url, lab_image_file().read_bytes(), "application/octet-stream", {"X-Image-Meta-Store": other["id"]}
        )
        assert upload[0] == 204, upload
        stored = admin.get(f"{target.glance_url}/v2/images/{image['id']}")
        assert (stored["status"], stored["stores"]) == ("active", other["id"])
        assert other["type"] == "file"
        expected = hashlib.sha256(lab_image_file().read_bytes()).hexdigest()
        assert target.ssh(f"sha256sum {other['path']}/{image['id']}").split()[0] == expected
    finally:
        admin.send("DELETE", f"{target.glance_url}/v2/images/{image['id']}")
    assert target.lab.ssh(f"test -e {other['path']}/{image['id']}", check=False).returncode != 0


def assert_glance_tables(target: Target) -> None:
    if target.engine == "mysql":
        tables = target.sql("SHOW TABLES FROM glance;").split()
    else:
        tables = target.lab.ssh(
            "runuser -u postgres -- psql -d glance -At", input="SELECT tablename FROM pg_tables;"
        ).stdout.split()
    assert set(tables) >= GLANCE_TABLES, tables


def assert_keystone_objects(target: Target) -> None:
    admin = target.admin()
    users = admin.keystone("/users?name=glance")["users"]
    assert len(users) == 1
    assignments = admin.keystone(f"/role_assignments?user.id={users[0]['id']}&include_names")["role_assignments"]
    assert any(a["role"]["name"] == "admin" and a["scope"]["project"]["name"] == "service" for a in assignments)
    services = admin.keystone("/services?type=image")["services"]
    assert [s["name"] for s in services] == ["glance"]
    endpoints = admin.keystone(f"/endpoints?service_id={services[0]['id']}")["endpoints"]
    assert sorted(e["interface"] for e in endpoints) == ["admin", "internal", "public"]
    assert {e["url"] for e in endpoints} == {target.glance_url}


def assert_limits_enforced(target: Target) -> None:
    admin = target.admin()
    service = admin.keystone("/services?type=image")["services"][0]
    limits = admin.keystone(f"/registered_limits?service_id={service['id']}")["registered_limits"]
    assert {limit["resource_name"] for limit in limits} == LIMITS
    users = admin.keystone("/users?name=service-oslo")["users"]
    system_roles = admin.keystone(f"/system/users/{users[0]['id']}/roles")["roles"]
    assert [role["name"] for role in system_roles] == ["reader"]
    # The admin project already holds the CirrOS image and image_count_total is 1.
    record = {"name": "one-too-many", "disk_format": "raw", "container_format": "bare"}
    assert admin.status_of("POST", f"{target.glance_url}/v2/images", record) == 413


def assert_no_limits(target: Target) -> None:
    admin = target.admin()
    assert admin.keystone("/registered_limits")["registered_limits"] == []
    assert admin.keystone("/users?name=service-oslo")["users"] == []
    assert "oslo_limit" not in api_conf(target).sections()


def assert_no_secret_in(target: Target, places: dict[str, str], controller: bool = True) -> None:
    """No known secret in `places` (and, with `controller`, in the argv sampled on the controller)."""
    if controller:
        assert len(target.controller_argv) > 20, "the argv watcher saw too little to prove anything"
        places = {**places, "controller argv": "\n".join(target.controller_argv)}
    for where, text in places.items():
        for what, value in target.known_secrets().items():
            # As typed, and as JSON would escape it (state and --json output are JSON).
            for form in {value, json.dumps(value)[1:-1]}:
                assert value and form not in text, f"{what} found in {where}"


def assert_nothing_left(target: Target) -> None:
    admin = target.admin()
    assert admin.keystone("/users?name=glance")["users"] == []
    assert admin.keystone("/users?name=service-oslo")["users"] == []
    assert admin.keystone("/services?type=image")["services"] == []
    assert not [e for e in admin.keystone("/endpoints")["endpoints"] if e["url"] == target.glance_url]
    assert admin.keystone("/registered_limits")["registered_limits"] == []
    if target.engine == "mysql":
        assert target.sql("SHOW DATABASES LIKE 'glance';").strip() == ""
        assert target.sql("SELECT User FROM mysql.user WHERE User = 'glance';").strip() == ""
    else:
        assert target.sql("SELECT 1 FROM pg_database WHERE datname = 'glance';").strip() == ""
        assert target.sql("SELECT 1 FROM pg_roles WHERE rolname = 'glance';").strip() == ""
        hba = target.lab.connection["postgresql"]["hba_path"]
        assert "glance-pulumi" not in target.ssh(f"cat {hba}")
    for host in target.hosts:
        assert target.ssh(f"systemctl is-active {UNIT}", check=False, host=host).strip() != "active"
        assert target.ssh(f"systemctl is-enabled {UNIT}", check=False, host=host).strip() != "enabled"
        # The stack's own files and store directories (without a file store in the stack, the
        # package's empty images directory may stay).
        stores = [store["path"] for store in target.stores if store["type"] == "file"]
        paths = " ".join([API_CONF, CREDENTIALS_CONF, SWIFT_REFERENCES, *stores])
        leftovers = target.ssh(f"for path in {paths}; do if test -e $path; then echo $path; fi; done", host=host)
        assert leftovers.split() == [], (host, leftovers)
    if any(store["type"] == "swift" for store in target.stores):
        # No object bytes left in the lab's Swift: Glance deleted them with the image.
        assert target.ssh("find /srv/node -name '*.data' | wc -l").strip() == "0"


# ---- several API hosts (lab.cluster) ---------------------------------------------------


def host_url(address: str | None) -> str:
    """One API host's own Glance, not the load balancer."""
    return f"http://{address}:9292"


def upload(session: keystone.Session, glance_url: str, name: str, data: bytes) -> str:
    record = {"name": name, "disk_format": "qcow2", "container_format": "bare"}
    status, image = session.send("POST", f"{glance_url}/v2/images", record)
    assert status == 201, image
    put = session.send("PUT", f"{glance_url}/v2/images/{image['id']}/file", data, "application/octet-stream")
    assert put[0] == 204, put
    return str(image["id"])


def download(session: keystone.Session, glance_url: str, image_id: str) -> bytes:
    status, data = session.send("GET", f"{glance_url}/v2/images/{image_id}/file")
    assert status == 200 and isinstance(data, bytes), status
    return data


def assert_image_crosses_hosts(target: Target) -> None:
    """Uploaded through one host, downloaded through the other (a store they share)."""
    admin = target.admin()
    data = lab_image_file().read_bytes()
    first, second = target.hosts
    for source, reader in ((first, second), (second, first)):
        image_id = upload(admin, host_url(source), f"through-{source}", data)
        try:
            assert admin.get(f"{host_url(reader)}/v2/images/{image_id}")["status"] == "active"
            assert download(admin, host_url(reader), image_id) == data
        finally:
            admin.send("DELETE", f"{host_url(reader)}/v2/images/{image_id}")


def assert_endpoint_serves_with_one_host_down(target: Target) -> None:
    """With glance-api stopped on either host, the load-balanced endpoint reads and takes uploads."""
    admin = target.admin()
    data = lab_image_file().read_bytes()
    for down in target.hosts:
        target.ssh(f"systemctl stop {UNIT}", host=down)
        try:
            time.sleep(2.5)  # the load balancer's health checks notice (every second)
            for _ in range(5):
                assert isinstance(admin.get(f"{target.glance_url}/v2/images")["images"], list)
            image_id = upload(admin, target.glance_url, f"while-{down}-is-down", data)
            assert download(admin, target.glance_url, image_id) == data
            assert admin.send("DELETE", f"{target.glance_url}/v2/images/{image_id}")[0] == 204
        finally:
            target.ssh(f"systemctl start {UNIT}", host=down)
            wait_until_host_answers(down)


def wait_until_host_answers(address: str | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{host_url(address)}/healthcheck", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"glance-api on {address} did not answer again"
        time.sleep(0.5)


def unit_down_interval(target: Target, host: str | None) -> tuple[int, int]:
    """When glance-api last left `active` and when it was active again (monotonic µs, one kernel clock)."""
    show = f"systemctl show -p ActiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic {UNIT}"
    values = dict(line.split("=", 1) for line in target.ssh(show, host=host).split())
    return int(values["ActiveExitTimestampMonotonic"]), int(values["ActiveEnterTimestampMonotonic"])


class EndpointPoller:
    """Calls the load-balanced endpoint every 0.1 s while a deploy runs; keeps what failed."""

    def __init__(self, target: Target) -> None:
        self.session = target.admin()
        self.url = f"{target.glance_url}/v2/images?limit=1"
        self.calls = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self.stop.is_set():
            self.calls += 1
            try:
                status, body = self.session.send("GET", self.url)
            except OSError as error:  # refused or reset: the endpoint went dark
                status, body = 0, error
            if status != 200:
                self.failures.append(f"{status}: {str(body)[:200]}")
            self.stop.wait(0.1)

    def __enter__(self) -> EndpointPoller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
