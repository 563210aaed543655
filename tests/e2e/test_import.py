"""Interoperable image import with the real engine: glance-direct across API hosts, web-download
and its filter, image_conversion, copy-image between stores, and where staging happens.

TestImportOnTwoHosts deploys lab-two-hosts once, with a file store beside Swift, the
image_conversion plugin and web-download opened to a small HTTP server on the lab host's side of
the cluster bridge; TestImportOnOneHost deploys lab-mariadb (single store) as it is.
"""

from __future__ import annotations

import configparser
import hashlib
import http.server
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.cluster import Cluster
from lab.controller import Lab
from lab.paths import CLUSTER_HOST_ADDRESS
from lab.stacks import PulumiCli
from lab.standin import keystone
from tests.e2e import checks
from tests.e2e.conftest import Timer
from tests.e2e.test_lab_stacks import EngineStack, engine_stack

METHODS = ["glance-direct", "web-download", "copy-image"]
STAGING_DIR = "/var/lib/glance/staging"
UPSTREAM_STAGING_DIR = "/tmp/staging"
GLANCE_LOG = "/var/log/glance/glance-api.log"
# What a host logs when it passes an import on to the host that staged the image.
PROXIED = "Proxying POST request to host"
FILTERED = "URI for web-download does not pass filtering"
IMAGE_COUNT = 20
# Refused by Glance's filter whatever the stack allows: loopback, and the link-local metadata address.
CLOSED_HOSTS = ("127.0.0.1", "169.254.169.254")


@dataclass
class ImageServer:
    """A small HTTP server on the lab host, serving one raw image."""

    address: str
    data: bytes
    server: http.server.ThreadingHTTPServer

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, host: str | None = None) -> str:
        return f"http://{host or self.address}:{self.port}/image.raw"


@pytest.fixture(scope="class")
def image_server(cluster_host: Cluster) -> Iterator[ImageServer]:
    data = os.urandom(512 * 1024)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((CLUSTER_HOST_ADDRESS, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ImageServer(CLUSTER_HOST_ADDRESS, data, server)
    server.shutdown()
    server.server_close()


def two_host_config(server: ImageServer) -> dict[str, Any]:
    return {
        "glance:stores": [
            {"id": "objects", "type": "swift", "container": "glance", "createContainer": True},
            # Each lab controller has its own disk here; shared is vouched only so that copy-image has a
            # second store to copy to (the test finds the copy on the host that made it).
            {"id": "local", "type": "file", "path": "/var/lib/glance/images", "shared": True},
        ],
        "glance:defaultStore": "objects",
        "glance:importMethods": METHODS,
        "glance:importPlugins": [{"name": "image_conversion", "outputFormat": "raw"}],
        # The lab host's side of the bridge is a private address: opened explicitly.
        "glance:webDownloadAllowedHosts": [server.address],
        "glance:webDownloadAllowPrivate": True,
        "glance:webDownloadAllowedPorts": [server.port],
    }


@pytest.fixture(scope="class")
def two_hosts(cluster_host: Cluster, pulumi_cli: PulumiCli, image_server: ImageServer) -> Iterator[EngineStack]:
    yield from engine_stack("lab-two-hosts", cluster_host, pulumi_cli, {}, two_host_config(image_server))


@pytest.fixture(scope="class")
def one_host(lab_host: Lab, pulumi_cli: PulumiCli) -> Iterator[EngineStack]:
    yield from engine_stack("lab-mariadb", lab_host, pulumi_cli, {})


# ---- the API calls -------------------------------------------------------------------------


def create(session: keystone.Session, url: str, name: str, disk_format: str = "raw") -> str:
    status, image = session.send(
        "POST", f"{url}/v2/images", {"name": name, "disk_format": disk_format, "container_format": "bare"}
    )
    assert status == 201, image
    return str(image["id"])


def stage(session: keystone.Session, url: str, image_id: str, data: bytes) -> None:
    status, body = session.send("PUT", f"{url}/v2/images/{image_id}/stage", data, "application/octet-stream")
    assert status == 204, body


def start_import(session: keystone.Session, url: str, image_id: str, method: dict[str, Any], **extra: Any) -> Any:
    return session.send("POST", f"{url}/v2/images/{image_id}/import", {"method": method, **extra})


def imported(session: keystone.Session, url: str, image_id: str, method: dict[str, Any], **extra: Any) -> None:
    status, body = start_import(session, url, image_id, method, **extra)
    assert status == 202, body


def wait_for(session: keystone.Session, url: str, image_id: str, done: Any, timeout: float = 300) -> dict[str, Any]:
    """The image once `done(image)` holds; fails on a failed import or the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        image: dict[str, Any] = session.get(f"{url}/v2/images/{image_id}")
        assert not image.get("os_glance_failed_import"), image
        if done(image):
            return image
        assert time.monotonic() < deadline, image
        time.sleep(1)


def active(image: dict[str, Any]) -> bool:
    return bool(image["status"] == "active")


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def assert_import_methods(target: checks.Target, expected: list[str]) -> None:
    info = target.admin().get(f"{target.glance_url}/v2/info/import")
    assert info["import-methods"]["value"] == expected, info


def assert_filter_refuses_closed_hosts(target: checks.Target, port: int) -> None:
    admin = target.admin()
    url = target.glance_url
    for host in CLOSED_HOSTS:
        image_id = create(admin, url, f"closed-{host}")
        try:
            uri = f"http://{host}:{port}/image.raw"
            status, body = start_import(admin, url, image_id, {"name": "web-download", "uri": uri})
            assert status == 400 and f"{FILTERED}: {uri}" in body, (status, body)
            assert admin.get(f"{url}/v2/images/{image_id}")["status"] == "queued"
        finally:
            admin.send("DELETE", f"{url}/v2/images/{image_id}")


def proxied_imports(target: checks.Target) -> int:
    """How many imports the API hosts have passed on to the host that staged the image."""
    return sum(int(target.ssh(f"grep -c '{PROXIED}' {GLANCE_LOG} || true", host=host)) for host in target.hosts)


@pytest.mark.e2e
class TestImportOnTwoHosts:
    def test_up(self, two_hosts: EngineStack) -> None:
        with Timer("engine lab-two-hosts (import): up"):
            two_hosts.cli("up", "--yes", "--skip-preview")
        target = two_hosts.target
        own = []
        for host in target.hosts:
            default = _main_conf(target, host)["DEFAULT"]
            own.append(default["worker_self_reference_url"])
            assert own[-1] == checks.host_url(host)
            assert default["enabled_import_methods"] == f"[{','.join(METHODS)}]"
        assert len(set(own)) == len(target.hosts)

    def test_info_import_lists_the_configured_methods(self, two_hosts: EngineStack) -> None:
        assert_import_methods(two_hosts.target, METHODS)

    def test_glance_direct_through_the_load_balancer(self, two_hosts: EngineStack) -> None:
        target = two_hosts.target
        admin = target.admin()
        url = target.glance_url
        proxied_before = proxied_imports(target)
        images = {create(admin, url, f"direct-{index}"): os.urandom(64 * 1024 + index) for index in range(IMAGE_COUNT)}
        try:
            with Timer(f"import: {IMAGE_COUNT} glance-direct imports through HAProxy"):
                for image_id, data in images.items():
                    stage(admin, url, image_id, data)
                    imported(admin, url, image_id, {"name": "glance-direct"})
                finished = {image_id: wait_for(admin, url, image_id, active) for image_id in images}
            for image_id, data in images.items():
                assert finished[image_id]["checksum"] == md5(data)
                assert checks.download(admin, url, image_id) == data
            # Round robin sends a stage and its import to different hosts: the import was proxied.
            assert proxied_imports(target) > proxied_before
        finally:
            for image_id in images:
                admin.send("DELETE", f"{url}/v2/images/{image_id}")

    def test_web_download_from_an_allowed_host(self, two_hosts: EngineStack, image_server: ImageServer) -> None:
        target = two_hosts.target
        admin = target.admin()
        url = target.glance_url
        image_id = create(admin, url, "web-download")
        try:
            imported(admin, url, image_id, {"name": "web-download", "uri": image_server.url()})
            image = wait_for(admin, url, image_id, active)
            assert image["checksum"] == md5(image_server.data)
            assert checks.download(admin, url, image_id) == image_server.data
        finally:
            admin.send("DELETE", f"{url}/v2/images/{image_id}")

    def test_web_download_from_loopback_or_link_local_is_refused(
        self, two_hosts: EngineStack, image_server: ImageServer
    ) -> None:
        assert_filter_refuses_closed_hosts(two_hosts.target, image_server.port)

    def test_qcow2_import_is_converted_to_raw(self, two_hosts: EngineStack, tmp_path: Path) -> None:
        target = two_hosts.target
        admin = target.admin()
        url = target.glance_url
        qcow2 = tmp_path / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "24M"], check=True, timeout=60)
        info = json.loads(
            subprocess.run(
                ["qemu-img", "info", "--output=json", str(qcow2)], capture_output=True, text=True, check=True
            ).stdout
        )
        image_id = create(admin, url, "converted", disk_format="qcow2")
        try:
            stage(admin, url, image_id, qcow2.read_bytes())
            imported(admin, url, image_id, {"name": "glance-direct"})
            image = wait_for(admin, url, image_id, active)
            assert image["disk_format"] == "raw"
            assert image["size"] == info["virtual-size"] == image["virtual_size"]
            assert len(checks.download(admin, url, image_id)) == info["virtual-size"]
        finally:
            admin.send("DELETE", f"{url}/v2/images/{image_id}")

    def test_copy_image_from_swift_to_the_file_store(self, two_hosts: EngineStack) -> None:
        target = two_hosts.target
        admin = target.admin()
        url = target.glance_url
        data = os.urandom(128 * 1024)
        image_id = create(admin, url, "copied")
        try:
            put = admin.send("PUT", f"{url}/v2/images/{image_id}/file", data, "application/octet-stream")
            assert put[0] == 204, put
            assert wait_for(admin, url, image_id, active)["stores"] == "objects"
            imported(admin, url, image_id, {"name": "copy-image"}, stores=["local"])
            image = wait_for(admin, url, image_id, lambda image: "local" in image["stores"].split(","))
            assert sorted(image["stores"].split(",")) == ["local", "objects"]
            copies = [host for host in target.hosts if _exists(target, f"/var/lib/glance/images/{image_id}", host)]
            assert len(copies) == 1, copies
        finally:
            admin.send("DELETE", f"{url}/v2/images/{image_id}")


@pytest.mark.e2e
class TestImportOnOneHost:
    def test_up(self, one_host: EngineStack) -> None:
        with Timer("engine lab-mariadb (import): up"):
            one_host.cli("up", "--yes", "--skip-preview")
        default = _main_conf(one_host.target, None)["DEFAULT"]
        assert default["node_staging_uri"] == f"file://{STAGING_DIR}"
        assert "worker_self_reference_url" not in default

    def test_info_import_lists_the_release_defaults(self, one_host: EngineStack) -> None:
        assert_import_methods(one_host.target, METHODS)

    def test_glance_direct_stages_in_glances_own_directory(self, one_host: EngineStack) -> None:
        target = one_host.target
        admin = target.admin()
        url = target.glance_url
        data = os.urandom(256 * 1024)
        image_id = create(admin, url, "direct")
        try:
            stage(admin, url, image_id, data)
            assert target.ssh(f"stat -c %U {STAGING_DIR}/{image_id}").strip() == "glance"
            imported(admin, url, image_id, {"name": "glance-direct"})
            image = wait_for(admin, url, image_id, active)
            assert image["checksum"] == md5(data)
            assert checks.download(admin, url, image_id) == data
            assert not _exists(target, f"{STAGING_DIR}/{image_id}", None)
        finally:
            admin.send("DELETE", f"{url}/v2/images/{image_id}")
        # Glance's file store makes its directory when it starts: nothing ever used the upstream default.
        assert not _exists(target, UPSTREAM_STAGING_DIR, None)

    def test_web_download_to_loopback_or_link_local_is_refused_by_default(self, one_host: EngineStack) -> None:
        assert_filter_refuses_closed_hosts(one_host.target, 80)


def _exists(target: checks.Target, path: str, host: str | None) -> bool:
    return target.ssh(f"test -e {path} && echo yes || echo no", host=host).strip() == "yes"


def _main_conf(target: checks.Target, host: str | None) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
    parser.read_string(target.ssh(f"cat {checks.API_CONF}", host=host))
    return parser
