"""Glance over https on the lab controller, with the real engine and the official plugins.

lab-tls is lab-mariadb with a throwaway CA's certificate for the controller (127.0.0.1, host
networking): each API host's HAProxy serves it on 9292, glance-api listens on loopback, the
program (providers, readiness gate, image upload) and Glance trust the CA. The lab's Keystone
is still plain http, so its CA checks are the unit tests' (tests/unit/test_tls.py). The tests
of the class run in order on one deployment, which ends destroyed.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from components import rendering, terminator
from lab.controller import Lab
from lab.paths import LOOPBACK, PORTS
from lab.stacks import PulumiCli, lab_image_file
from tests.certificates import Authority, Server
from tests.e2e import checks
from tests.e2e.conftest import Timer
from tests.e2e.test_lab_stacks import EngineStack, engine_stack

STACK = "lab-tls"
CA = Authority("glance-pulumi lab CA")
NAMES = (LOOPBACK, "localhost")
HTTPS_URL = f"https://{LOOPBACK}:{PORTS['glance']}"
TERMINATOR_FILES = (terminator.UNIT_FILE, terminator.CONFIG, terminator.PEM)


@dataclass
class TlsStack:
    engine: EngineStack
    ca_file: Path
    # The lab's own haproxy.cfg, which the terminator must leave alone.
    haproxy_cfg: str

    @property
    def target(self) -> checks.Target:
        return self.engine.target


def set_pem(stack: EngineStack, key: str, text: str, secret: bool = False) -> None:
    """PEM text into the stack's config, on standard input (as an argument it would read as a flag)."""
    stack.pulumi.run("config", "set", *(["--secret"] if secret else []), "--stack", STACK, key, stdin=text)


def set_tls(stack: EngineStack, server: Server) -> None:
    """The certificate (plain) and its key (secret) into the stack's config."""
    set_pem(stack, "glance:tlsPrivateKey", server.key, secret=True)
    set_pem(stack, "glance:tlsCertificate", server.certificate)
    lines = server.key.splitlines()
    stack.target.secrets.update({f"tls key line {i}": line for i, line in enumerate(lines) if len(line) > 40})


@pytest.fixture(scope="class")
def deployed(lab_host: Lab, pulumi_cli: PulumiCli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsStack]:
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca_file.write_text(CA.pem)
    for stack in engine_stack(STACK, lab_host, pulumi_cli, {}):
        set_tls(stack, CA.issue(*NAMES))
        set_pem(stack, "glance:tlsCaBundle", CA.pem)
        yield TlsStack(stack, ca_file, lab_host.ssh("sha256sum /etc/haproxy/haproxy.cfg").stdout)


def context(ca: str = CA.pem) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca)


def call(url: str, token: str | None = None, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    """An https request verified against the lab CA; (status, body), error statuses included."""
    headers = {"X-Auth-Token": token} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/json" if body.startswith(b"{") else "application/octet-stream"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60, context=context()) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def served_certificate() -> bytes:
    """The certificate the terminator presents now (DER), verified against the lab CA."""
    with (
        socket.create_connection((LOOPBACK, PORTS["glance"]), timeout=10) as raw,
        context().wrap_socket(raw, server_hostname=LOOPBACK) as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def der(server: Server) -> bytes:
    return x509.load_pem_x509_certificate(server.certificate.encode()).public_bytes(serialization.Encoding.DER)


class HealthPoller:
    """A new TLS connection to the endpoint every 0.05 s while a deploy runs; keeps what failed."""

    def __init__(self) -> None:
        self.calls = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self.stop.is_set():
            self.calls += 1
            try:
                status, body = call(f"{HTTPS_URL}/healthcheck")
            except (OSError, http.client.HTTPException) as error:
                status, body = 0, str(error).encode()
            if status != 200:
                self.failures.append(f"{status}: {body[:200]!r}")
            self.stop.wait(0.05)

    def __enter__(self) -> HealthPoller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


@pytest.mark.e2e
class TestGlanceOverHttps:
    def test_up_deploys_the_terminator(self, deployed: TlsStack) -> None:
        with Timer(f"engine {STACK}: up"):
            deployed.engine.cli("up", "--yes", "--skip-preview")
        checks.assert_units_and_config_ownership(deployed.target)
        assert deployed.target.ssh(f"systemctl is-active {terminator.UNIT}").strip() == "active"
        conf = checks.api_conf(deployed.target)
        assert conf["DEFAULT"]["bind_host"] == "127.0.0.1" and conf["DEFAULT"]["public_endpoint"] == HTTPS_URL
        assert conf["keystone_authtoken"]["cafile"] == rendering.CA_FILE

    def test_every_version_link_is_https(self, deployed: TlsStack) -> None:
        status, body = call(f"{HTTPS_URL}/")
        assert status == 300, body
        hrefs = [link["href"] for version in json.loads(body)["versions"] for link in version["links"]]
        assert hrefs and all(href.startswith(f"{HTTPS_URL}/") for href in hrefs), hrefs

    def test_plain_http_on_the_public_port_is_refused(self, deployed: TlsStack) -> None:
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{PORTS['glance']}/", timeout=10) as response:
                answered: Any = response.status
        except urllib.error.HTTPError as error:
            answered = error.code
        except (OSError, http.client.HTTPException) as error:
            answered = type(error).__name__
        # No version document over plain http: the handshake fails, or HAProxy answers 400.
        assert answered not in (200, 300), answered

    def test_the_backend_verifies_with_openssl(self, deployed: TlsStack) -> None:
        def s_client(ca_file: Path) -> subprocess.CompletedProcess[str]:
            command = ["openssl", "s_client", "-connect", f"{LOOPBACK}:{PORTS['glance']}", "-CAfile", str(ca_file)]
            command += ["-verify_return_error", "-verify_ip", LOOPBACK]
            return subprocess.run(command, input="", capture_output=True, text=True, timeout=30)

        trusted = s_client(deployed.ca_file)
        assert trusted.returncode == 0 and "Verify return code: 0 (ok)" in trusted.stdout, trusted.stderr
        other = deployed.ca_file.with_name("other-ca.pem")
        other.write_text(Authority("not the lab CA").pem)
        assert s_client(other).returncode != 0

    def test_glance_api_listens_on_loopback_only(self, deployed: TlsStack) -> None:
        listening = deployed.target.ssh("ss -Hltn").split("\n")
        backend = [line.split()[3] for line in listening if line.split() and line.split()[3].endswith(":9293")]
        assert backend == [f"127.0.0.1:{rendering.BACKEND_PORT}"], listening

    def test_the_terminators_files_are_root_only(self, deployed: TlsStack) -> None:
        paths = " ".join([*TERMINATOR_FILES, rendering.CA_FILE])
        stat = deployed.target.ssh(f"stat -c '%n %a:%U:%G' {paths}")
        modes = dict(line.rsplit(" ", 1) for line in stat.splitlines())
        assert {modes[path] for path in TERMINATOR_FILES} == {"600:root:root"}
        assert modes[rendering.CA_FILE] == "640:root:glance"
        assert deployed.target.ssh("sha256sum /etc/haproxy/haproxy.cfg") == deployed.haproxy_cfg

    def test_an_image_goes_up_and_down_over_https(self, deployed: TlsStack) -> None:
        # The program's own upload (the image provider verifies the CA) ended active.
        token = deployed.target.admin().token
        image_id = json.loads(deployed.engine.cli("stack", "output", "--json"))["image_id"]
        status, body = call(f"{HTTPS_URL}/v2/images/{image_id}", token)
        assert status == 200 and json.loads(body)["status"] == "active", body
        data = lab_image_file().read_bytes()
        record = {"name": "over-https", "disk_format": "qcow2", "container_format": "bare"}
        status, body = call(f"{HTTPS_URL}/v2/images", token, "POST", json.dumps(record).encode())
        assert status == 201, body
        uploaded = json.loads(body)["id"]
        try:
            assert call(f"{HTTPS_URL}/v2/images/{uploaded}/file", token, "PUT", data)[0] == 204
            status, body = call(f"{HTTPS_URL}/v2/images/{uploaded}", token)
            image = json.loads(body)
            assert image["status"] == "active" and image["checksum"] == hashlib.md5(data).hexdigest()
            assert call(f"{HTTPS_URL}/v2/images/{uploaded}/file", token) == (200, data)
        finally:
            call(f"{HTTPS_URL}/v2/images/{uploaded}", token, "DELETE")

    def test_a_new_certificate_reloads_without_a_failed_request(self, deployed: TlsStack) -> None:
        renewed = CA.issue(*NAMES)
        set_tls(deployed.engine, renewed)
        changed = deployed.engine.changed_steps()
        assert {"glance-config-tls-certificate", "glance-tls-reload"} <= changed, changed
        assert not changed & {"glance-restart", "glance-config-glance-api", "glance-config-credentials"}, changed
        with HealthPoller() as poller, Timer(f"engine {STACK}: certificate rotation"):
            deployed.engine.cli("up", "--yes", "--skip-preview")
            time.sleep(1)
        assert poller.failures == [] and poller.calls > 20, (poller.calls, poller.failures[:5])
        assert served_certificate() == der(renewed)
        deployed.engine.cli("preview", "--expect-no-changes")
        state = deployed.engine.cli("stack", "export")
        checks.assert_no_secret_in(
            deployed.target, {"engine output": "\n".join(deployed.engine.outputs), "state": state}, controller=False
        )

    def test_destroy_leaves_nothing(self, deployed: TlsStack) -> None:
        deployed.engine.cli("destroy", "--yes", "--skip-preview")
        checks.assert_nothing_left(deployed.target)
        target = deployed.target
        assert target.ssh(f"systemctl is-active {terminator.UNIT}", check=False).strip() != "active"
        leftovers = target.ssh(f"ls {' '.join([*TERMINATOR_FILES, rendering.CA_FILE])} 2>/dev/null", check=False)
        assert leftovers.split() == []
        assert target.ssh("sha256sum /etc/haproxy/haproxy.cfg") == deployed.haproxy_cfg
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((LOOPBACK, PORTS["glance"]), timeout=5).close()
