"""The CirrOS image: its file is checked against glance:cirrosChecksum on the machine running
Pulumi before the image resource uploads it; a mismatch fails that step, naming both
checksums, and the image (which depends on it) is never created."""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components import image as image_module
from components.validators import Checksum
from tests.unit.harness import TEST_SECRETS, Deployment, run_program, stack_config

IMAGE = b"QFI\xfb not really a qcow2 image"
SHA256 = hashlib.sha256(IMAGE).hexdigest()
MD5 = hashlib.md5(IMAGE).hexdigest()
WRONG = "0" * 64


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        self.server.requests += 1  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(IMAGE)))
        self.end_headers()
        self.wfile.write(IMAGE)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    httpd.requests = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(server: http.server.HTTPServer, path: str = "/cirros.img") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Deployment:
    monkeypatch.setenv("GLANCE_PULUMI_CACHE", str(tmp_path / "cache"))
    return run_program({**stack_config("debian"), **TEST_SECRETS, **overrides})


def run_step(deployment: Deployment) -> subprocess.CompletedProcess[str]:
    """The image-source step as pulumi-command runs it: its create script, its stdin."""
    step = deployment.named("glance-image-source")
    return subprocess.run(
        ["/bin/sh", "-c", step.inputs["create"]],
        input=step.inputs["stdin"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_url_is_downloaded_into_the_cache_and_checked_before_the_upload(
    server: http.server.HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = deploy(tmp_path, monkeypatch, cirrosSource=url(server), cirrosChecksum=SHA256)
    cached = tmp_path / "cache" / "images" / f"sha256-{SHA256}.img"
    image = deployment.named("glance-image")
    assert image.inputs["localFilePath"] == str(cached)
    assert deployment.depends_on("glance-image", "glance-image-source")
    assert deployment.depends_on("glance-image", "glance-ready")
    result = run_step(deployment)
    assert result.returncode == 0, result.stderr
    assert cached.read_bytes() == IMAGE
    # A second run finds the file in the cache and does not download it again.
    assert run_step(deployment).returncode == 0 and server.requests == 1  # type: ignore[attr-defined]


def test_a_wrong_checksum_fails_the_step_naming_both_and_leaves_no_file(
    server: http.server.HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = deploy(tmp_path, monkeypatch, cirrosSource=url(server), cirrosChecksum=WRONG)
    result = run_step(deployment)
    assert result.returncode != 0
    assert f"checksum mismatch for {url(server)}" in result.stderr
    assert f"sha256 {WRONG}" in result.stderr and f"sha256 is {SHA256}" in result.stderr
    assert "nothing was uploaded" in result.stderr
    # Neither the file nor a partial download is left for the image resource to upload.
    assert list((tmp_path / "cache" / "images").iterdir()) == []


def test_an_md5_is_checked_too(server: http.server.HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = deploy(tmp_path, monkeypatch, cirrosSource=url(server), cirrosChecksum=MD5)
    assert json.loads(deployment.named("glance-image-source").inputs["stdin"])["algorithm"] == "md5"
    assert run_step(deployment).returncode == 0


def test_a_redirect_to_a_metadata_address_is_refused(
    server: http.server.HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = deploy(tmp_path, monkeypatch, cirrosSource=url(server, "/redirect"), cirrosChecksum=SHA256)
    result = run_step(deployment)
    assert result.returncode != 0 and "link-local/metadata address" in result.stderr


def test_a_local_file_with_a_checksum_is_checked_where_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "my image.qcow2"
    local.write_bytes(IMAGE)
    good = deploy(tmp_path, monkeypatch, cirrosSource=str(local), cirrosChecksum=f"sha256:{SHA256}")
    assert good.named("glance-image").inputs["localFilePath"] == str(local)
    assert run_step(good).returncode == 0
    bad = deploy(tmp_path, monkeypatch, cirrosSource=str(local), cirrosChecksum=WRONG)
    result = run_step(bad)
    assert result.returncode != 0 and f"checksum mismatch for {local}" in result.stderr
    assert local.read_bytes() == IMAGE


def test_a_local_file_without_a_checksum_is_uploaded_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "cirros.qcow2"
    local.write_bytes(IMAGE)
    deployment = deploy(tmp_path, monkeypatch, cirrosSource=str(local), imageVisibility="community")
    assert not deployment.of_type("command:local:Command")
    image = deployment.named("glance-image").inputs
    assert (image["localFilePath"], image["visibility"]) == (str(local), "community")


def test_the_cache_follows_glance_pulumi_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    checksum = Checksum("md5", MD5)
    monkeypatch.delenv("GLANCE_PULUMI_CACHE", raising=False)
    assert image_module.cache_path(checksum) == f"/var/cache/glance-pulumi/images/md5-{MD5}.img"
    monkeypatch.setenv("GLANCE_PULUMI_CACHE", "/srv/cache/")
    assert image_module.cache_path(checksum) == f"/srv/cache/images/md5-{MD5}.img"
