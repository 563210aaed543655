"""TLS: the keys' checks, the terminator on each API host, Glance and the program as TLS clients."""

from __future__ import annotations

import configparser
import json
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from components import certificates, rendering, terminator
from components.remote import script_source
from components.settings import ConfigError
from tests.certificates import Authority, Server, openssl_chain, other_key
from tests.unit.harness import (
    SECRET_SIG,
    SECRET_VALUE,
    TEST_SECRETS,
    Deployment,
    pinned,
    plain,
    run_program,
    stack_config,
)

CA = Authority()
OTHER_CA = Authority("another CA")
CONTROLLER = CA.issue("controller")
HOSTS = ["10.0.0.11", "10.0.0.12"]
LB = "https://glance.example:9292"
SWIFT = [{"id": "objects", "type": "swift", "authUrl": "https://keystone.example:5000/v3"}]


def tls(server: Server = CONTROLLER, ca: str | None = CA.pem) -> dict[str, Any]:
    keys: dict[str, Any] = {"tlsCertificate": server.certificate, "tlsPrivateKey": server.key}
    return keys if ca is None else {**keys, "tlsCaBundle": ca}


# The endpoints left to their defaults (the committed stack spells out http://controller:9292).
DERIVED_URLS = {"publicUrl": "", "internalUrl": "", "adminUrl": ""}


def debian(deployment: Deployment | None = None, **overrides: Any) -> Deployment:
    return run_program({**stack_config("debian"), **TEST_SECRETS, **DERIVED_URLS, **overrides}, deployment)


def two_hosts(deployment: Deployment | None = None, **overrides: Any) -> Deployment:
    config = {**stack_config("debian"), **TEST_SECRETS, **pinned(*HOSTS), "apiHosts": HOSTS, "publicUrl": LB}
    config |= {"internalUrl": "", "adminUrl": "", "stores": SWIFT, "defaultStore": ""}
    return run_program({**config, **overrides}, deployment)


def refusal(run: Any, **overrides: Any) -> str:
    """The message of a refused config; nothing may have been registered."""
    deployment = Deployment()
    with pytest.raises(ConfigError) as refused:
        run(deployment, **overrides)
    assert deployment.registrations == []
    return str(refused.value)


def stdin(deployment: Deployment, step: str) -> str:
    return str(plain(deployment.named(step).inputs["stdin"]))


def glance_conf(deployment: Deployment) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(stdin(deployment, "glance-config-glance-api"))
    return parser


def haproxy(text: str) -> dict[str, list[str]]:
    """haproxy.cfg read back: each section header (an unindented line) -> its directives."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line[0].isspace():
            current.append(line.strip())
        else:
            current = sections.setdefault(line.strip(), [])
    return sections


# ---- refusals, each naming its key ------------------------------------------------------------


def test_an_https_endpoint_without_a_certificate_is_refused() -> None:
    message = refusal(debian, publicUrl="https://controller:9292")
    assert "glance:publicUrl https://controller:9292 is https://, but nothing would serve TLS there" in message
    assert "glance:tlsCertificate and glance:tlsPrivateKey" in message
    # The load balancer's URL, shared by the three endpoints: said once.
    message = refusal(two_hosts)
    assert f"glance:publicUrl {LB} is https:// (so is internalUrl, adminUrl), but nothing would serve" in message
    assert "glance:tlsTermination loadBalancer" in message


def test_the_certificate_and_its_key_come_together() -> None:
    assert "glance:tlsPrivateKey required with tlsCertificate" in refusal(debian, tlsCertificate=CONTROLLER.certificate)
    assert "glance:tlsCertificate required with tlsPrivateKey" in refusal(debian, tlsPrivateKey=CONTROLLER.key)


def test_a_key_that_is_not_the_certificates_is_refused() -> None:
    stranger = other_key()
    message = refusal(debian, **tls(Server(CONTROLLER.certificate, stranger)))
    assert "glance:tlsPrivateKey is not the key of tlsCertificate's first certificate" in message
    assert stranger.splitlines()[1] not in message


def test_a_certificate_must_cover_every_https_host() -> None:
    message = refusal(debian, **tls(CA.issue("elsewhere.example", "10.0.0.99")))
    assert (
        "glance:tlsCertificate does not cover controller (publicUrl, internalUrl, adminUrl): its subjectAltName "
        "names elsewhere.example, 10.0.0.99" in message
    )
    message = refusal(debian, **tls(CA.issue("controller")), adminUrl="https://admin.example:9292")
    assert "does not cover admin.example (adminUrl)" in message and "does not cover controller" not in message
    # With several hosts each is verified by its own name too (its gate, a re-encrypting balancer).
    message = refusal(two_hosts, **tls(CA.issue("glance.example", HOSTS[0])))
    assert f"glance:tlsCertificate does not cover {HOSTS[1]} (apiHosts)" in message
    assert HOSTS[0] + " (apiHosts)" not in message


def test_a_certificate_without_names_is_refused() -> None:
    assert "its subjectAltName names no name (no subjectAltName)" in refusal(debian, **tls(CA.issue()))


def test_an_openssl_made_chain_is_accepted(tmp_path: Path) -> None:
    """RSA keys, and a CA certificate without keyUsage, as `openssl req -x509` makes it."""
    ca, server = openssl_chain(tmp_path, "controller", "10.0.0.11")
    deployment = debian(**tls(server, ca))
    assert plain(deployment.named("glance-config-ca-bundle").inputs["stdin"]) == ca.strip() + "\n"
    other_ca, _ = openssl_chain(tmp_path, "controller")
    assert "glance:tlsCertificate a client trusting tlsCaBundle refuses it:" in refusal(debian, **tls(server, other_ca))


def test_a_certificate_of_another_ca_or_expired_is_refused() -> None:
    message = refusal(debian, **tls(OTHER_CA.issue("controller")))
    assert "glance:tlsCertificate a client trusting tlsCaBundle refuses it:" in message
    assert "glance:tlsCertificate a client trusting tlsCaBundle refuses it:" in refusal(
        debian, **tls(CA.issue("controller", expired=True))
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("tlsCertificate", "not a certificate", "glance:tlsCertificate must be PEM certificates"),
        ("tlsCertificate", CONTROLLER.key, "glance:tlsCertificate must be PEM certificates"),
        (
            "tlsCertificate",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "a block is not a well-formed certificate",
        ),
        ("tlsCaBundle", "-----BEGIN CERTIFICATE-----", "glance:tlsCaBundle must be PEM certificates"),
        ("tlsCaBundle", CONTROLLER.certificate, "glance:tlsCaBundle certificate 1 is not a CA certificate"),
        ("tlsPrivateKey", CONTROLLER.certificate, "glance:tlsPrivateKey must be an unencrypted PEM private key"),
        ("tlsPrivateKey", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----", "unencrypted PEM"),
    ],
)
def test_malformed_pem_is_refused(key: str, value: str, message: str) -> None:
    refused = refusal(debian, **{**tls(), key: value})
    assert message in refused
    assert "c2VjcmV0" not in refused


def test_an_encrypted_key_is_refused() -> None:
    encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nc2VjcmV0\n-----END ENCRYPTED PRIVATE KEY-----\n"
    assert "glance:tlsPrivateKey is encrypted" in refusal(debian, **{**tls(), "tlsPrivateKey": encrypted})


def test_http_endpoints_beside_a_served_certificate_are_refused() -> None:
    message = refusal(debian, **tls(), internalUrl="http://controller:9292")
    assert "glance:internalUrl http://controller:9292 is http://, but the API hosts serve https" in message


def test_the_load_balancer_mode_takes_no_certificate_and_needs_https() -> None:
    message = refusal(two_hosts, tlsTermination="loadBalancer", **tls(CA.issue("glance.example", *HOSTS)))
    assert "glance:tlsCertificate not used with tlsTermination loadBalancer" in message
    message = refusal(debian, tlsTermination="loadBalancer")
    assert "glance:tlsTermination loadBalancer, but no image endpoint is https://" in message


def test_a_plaintext_key_is_refused() -> None:
    from components.settings import load_settings

    raw = {**stack_config("debian"), **TEST_SECRETS, **DERIVED_URLS, **tls()}
    raw = {key: value if isinstance(value, str) else json.dumps(value) for key, value in raw.items()}
    with pytest.raises(ConfigError) as refused:
        load_settings(raw, frozenset(TEST_SECRETS))
    assert "glance:tlsPrivateKey holds a credential: set it with `pulumi config set --secret" in str(refused.value)
    assert CONTROLLER.key.splitlines()[1] not in str(refused.value)


def test_host_names_match_as_clients_match_them() -> None:
    chain = CA.issue("*.example.org", "fd00::11", "10.0.0.5").certificate
    assert certificates.covers(chain, "api.example.org")
    assert not certificates.covers(chain, "example.org")
    assert not certificates.covers(chain, "a.b.example.org")
    assert certificates.covers(chain, "[fd00::11]") and certificates.covers(chain, "10.0.0.5")
    assert not certificates.covers(chain, "10.0.0.6")


# ---- the terminator on each API host ----------------------------------------------------------


def test_the_endpoints_default_to_https_and_glance_listens_on_loopback() -> None:
    deployment = debian(**tls())
    urls = {plain(r.inputs)["interface"]: plain(r.inputs)["url"] for r in deployment.of_type(ENDPOINT)}
    assert urls == dict.fromkeys(("public", "internal", "admin"), "https://controller:9292")
    conf = glance_conf(deployment)
    assert conf["DEFAULT"]["bind_host"] == "127.0.0.1"
    assert conf["DEFAULT"]["bind_port"] == str(rendering.BACKEND_PORT)
    assert conf["DEFAULT"]["public_endpoint"] == "https://controller:9292"
    assert conf["oslo_middleware"]["enable_proxy_headers_parsing"] == "True"


ENDPOINT = "openstack:identity/endpointV3:EndpointV3"


def test_haproxy_serves_the_certificate_in_front_of_glance() -> None:
    deployment = debian(**tls())
    config = haproxy(stdin(deployment, "glance-config-haproxy"))
    assert f"bind :::9292 v4v6 ssl crt {terminator.PEM}" in config["frontend glance-api"]
    assert "http-request set-header X-Forwarded-Proto https" in config["frontend glance-api"]
    for header in ("Forwarded", "X-Forwarded-Host", "X-Forwarded-Prefix"):
        assert f"http-request del-header {header}" in config["frontend glance-api"]
    assert "default_backend glance-api" in config["frontend glance-api"]
    assert f"server glance-api 127.0.0.1:{rendering.BACKEND_PORT} check" in config["backend glance-api"]
    assert "timeout client 1h" in config["defaults"] and "mode http" in config["defaults"]
    # The crt file: the chain, then the key; a secret step, never logged.
    pem = deployment.named("glance-config-tls-certificate")
    assert "stdin" in pem.secret_inputs and pem.inputs.get("logging") == "none"
    assert plain(pem.inputs["stdin"]) == CONTROLLER.certificate.strip() + "\n" + CONTROLLER.key.strip() + "\n"
    assert "haproxy" in deployment.named("glance-install").inputs["create"]
    # An instance of its own: the package's haproxy.cfg (a host's own load balancer) is not touched.
    config_step = deployment.named("glance-config-haproxy").inputs
    assert f'mv -f "$tmp" {terminator.CONFIG}' in config_step["create"]
    assert "rm -f /etc/haproxy/glance-pulumi.cfg" in config_step["delete"]
    assert "haproxy.cfg" not in json.dumps([r.inputs for r in deployment.registrations], default=str)
    # Root-only, never re-owned to glance.
    ownership = deployment.named("glance-ownership").inputs["create"]
    for path in (terminator.PEM, terminator.CONFIG, terminator.UNIT_FILE):
        assert path not in ownership
    assert "umask 077" in pem.inputs["create"]


def test_the_terminators_unit_runs_haproxy_in_master_worker_mode() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(stdin(debian(**tls()), "glance-config-tls-unit-file"))
    service = unit["Service"]
    assert service["ExecStart"] == f"haproxy -Ws -f {terminator.CONFIG} -p /run/glance-pulumi-tls.pid"
    assert service["Type"] == "notify" and service["KillMode"] == "mixed"
    # configparser keeps the last of the two ExecReload lines: the signal, after the check.
    assert service["ExecReload"] == "/bin/kill -USR2 $MAINPID"
    assert f"ExecReload=haproxy -Ws -f {terminator.CONFIG} -c -q" in terminator.render_unit()
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_terminator_starts_after_glance_moved_and_before_the_gate() -> None:
    deployment = debian(**tls())
    assert deployment.depends_on("glance-tls-unit", "glance-restart")
    assert deployment.depends_on("glance-tls-reload", "glance-tls-unit")
    assert deployment.depends_on("glance-ready", "glance-tls-reload")
    reload = deployment.named("glance-tls-reload").inputs["create"]
    assert "systemctl reload-or-restart glance-pulumi-tls" in reload and "systemctl restart" not in reload
    unit = deployment.named("glance-tls-unit").inputs
    assert "systemctl daemon-reload\nsystemctl enable --now glance-pulumi-tls" in unit["create"]
    assert "systemctl disable --now glance-pulumi-tls" in unit["delete"]
    assert deployment.depends_on("glance-tls-unit", "glance-config-tls-unit-file")


def changed(before: Deployment, after: Deployment) -> set[str]:
    inputs = {(r.type, r.name): r.inputs for r in before.registrations}
    return {r.name for r in after.registrations if r.inputs != inputs.get((r.type, r.name))}


def test_a_new_certificate_is_a_secret_change_that_reloads_haproxy_only() -> None:
    renewed = CA.issue("controller")
    before, after = debian(**tls()), debian(**tls(renewed))
    # The reload is replaced (its triggers changed), and with it the gate runs again (its triggers
    # hold the reload's id, which the mocks keep the same).
    assert changed(before, after) == {"glance-config-tls-certificate", "glance-tls-reload"}
    assert after.named("glance-ready").inputs["triggers"][1] == "glance-tls-reload-id"
    assert after.named("glance-tls-reload").inputs["triggers"][SECRET_SIG] == SECRET_VALUE
    # Glance itself is not restarted: its files did not change.
    assert plain(before.named("glance-restart").inputs) == plain(after.named("glance-restart").inputs)


def test_without_tls_nothing_of_it_is_deployed() -> None:
    deployment = debian()
    names = {r.name for r in deployment.registrations}
    assert not {"glance-config-haproxy", "glance-config-tls-certificate", "glance-tls-unit"} & names
    assert "glance-config-ca-bundle" not in names
    conf = glance_conf(deployment)
    assert "bind_host" not in conf["DEFAULT"] and not conf.has_section("oslo_middleware")
    assert "cafile" not in conf["keystone_authtoken"]
    assert "haproxy" not in deployment.named("glance-install").inputs["create"]


# ---- several hosts: both load balancer modes --------------------------------------------------


def test_hosts_mode_gates_each_host_over_https() -> None:
    deployment = two_hosts(**tls(CA.issue("glance.example", *HOSTS)))
    for node, host in (("glance", HOSTS[0]), ("glance-2", HOSTS[1])):
        params = json.loads(stdin(deployment, f"{node}-ready"))
        assert params["glance_url"] == f"https://{host}:9292"
        assert params["ca_bundle"] == CA.pem
        assert deployment.depends_on(f"{node}-ready", f"{node}-tls-reload")
    assert glance_conf(deployment)["DEFAULT"]["public_endpoint"] == LB


def test_load_balancer_mode_serves_plain_http_on_the_hosts() -> None:
    deployment = two_hosts(tlsTermination="loadBalancer")
    names = {r.name for r in deployment.registrations}
    assert "glance-config-haproxy" not in names and "glance-2-tls-unit" not in names
    conf = glance_conf(deployment)
    assert "bind_host" not in conf["DEFAULT"]
    assert conf["DEFAULT"]["public_endpoint"] == LB
    assert conf["oslo_middleware"]["enable_proxy_headers_parsing"] == "True"
    assert json.loads(stdin(deployment, "glance-ready"))["glance_url"] == f"http://{HOSTS[0]}:9292"


# ---- Glance and the program trust the CA ------------------------------------------------------


def test_glance_trusts_the_ca_for_keystone_and_the_stores() -> None:
    stores = [
        *SWIFT,
        {"id": "volumes", "type": "cinder", "volumeType": "images"},
        {"id": "local", "type": "file", "path": "/srv/images"},
    ]
    deployment = debian(**tls(), stores=stores, defaultStore="local")
    ca = deployment.named("glance-config-ca-bundle")
    assert plain(ca.inputs["stdin"]) == CA.pem and "stdin" not in ca.secret_inputs
    assert rendering.CA_FILE in deployment.named("glance-ownership").inputs["create"]
    conf = glance_conf(deployment)
    assert conf["keystone_authtoken"]["cafile"] == rendering.CA_FILE
    assert conf["objects"]["swift_store_cacert"] == rendering.CA_FILE
    assert conf["volumes"]["cinder_ca_certificates_file"] == rendering.CA_FILE
    assert not [option for option in conf["local"] if "ca" in option.split("_")]


def test_a_swift_store_over_http_gets_no_ca_option() -> None:
    store = [{"id": "objects", "type": "swift", "authUrl": "http://keystone.example:5000/v3"}]
    conf = glance_conf(debian(**tls(), stores=store, defaultStore=""))
    assert "swift_store_cacert" not in conf["objects"]


def test_a_keystone_ca_alone_is_trusted_without_a_terminator() -> None:
    deployment = debian(tlsCaBundle=CA.pem, keystoneUrl="https://keystone.example:5000")
    names = {r.name for r in deployment.registrations}
    assert "glance-config-haproxy" not in names and "glance-config-ca-bundle" in names
    assert glance_conf(deployment)["keystone_authtoken"]["cafile"] == rendering.CA_FILE


def test_liberty_trusts_the_ca_in_both_files() -> None:
    deployment = run_program({**stack_config("clearlinux"), **TEST_SECRETS, "tlsCaBundle": CA.pem})
    for step in ("glance-config-glance-api", "glance-config-glance-registry"):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(stdin(deployment, step))
        assert parser["keystone_authtoken"]["cafile"] == rendering.CA_FILE


def test_every_openstack_provider_and_the_gate_verify_the_ca() -> None:
    store = [{**SWIFT[0], "createContainer": True}]
    deployment = debian(**tls(), stores=store, defaultStore="")
    providers = deployment.of_type("pulumi:providers:openstack")
    assert {r.name for r in providers} == {"glance-keystone", "glance-image-provider", "glance-objects-account"}
    for provider in providers:
        assert plain(provider.inputs)["cacertFile"] == CA.pem, provider.name
    gate = deployment.named("glance-ready").inputs["create"]
    assert gate.startswith("python3 -c ") and "install_opener" in gate
    assert json.loads(stdin(deployment, "glance-ready"))["ca_bundle"] == CA.pem


def test_the_system_role_step_trusts_the_ca_too() -> None:
    deployment = debian(**tls(), keystoneLimits=True, keystoneUrl="https://keystone.example:5000")
    step = deployment.named("glance-limits-system-reader").inputs
    assert "install_opener" in step["create"] and step["create"].endswith(" grant")
    assert step["delete"].endswith(" revoke")
    assert json.loads(plain(step["stdin"]))["ca_bundle"] == CA.pem
    without = debian(keystoneLimits=True).named("glance-limits-system-reader").inputs
    assert "install_opener" not in without["create"] and "ca_bundle" not in json.loads(plain(without["stdin"]))


def test_without_a_ca_the_providers_and_gate_use_the_systems() -> None:
    deployment = debian()
    assert "cacertFile" not in plain(deployment.named("glance-keystone").inputs)
    assert "install_opener" not in deployment.named("glance-ready").inputs["create"]
    assert "ca_bundle" not in json.loads(stdin(deployment, "glance-ready"))


# ---- the gate against a real TLS server -----------------------------------------------------

GATE = """
import json, sys, urllib.request
params = json.load(sys.stdin)
try:
    with urllib.request.urlopen(params["glance_url"], timeout=10) as response:
        print("status", response.status, params["marker"], *sys.argv[1:])
except OSError as exc:
    raise SystemExit(f"glance not ready: healthcheck: {exc}")
"""


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A server on localhost presenting a certificate of CA."""
    server_cert = CA.issue("localhost", "127.0.0.1")
    directory: Path = tmp_path_factory.mktemp("tls")
    (directory / "cert.pem").write_text(server_cert.certificate)
    (directory / "key.pem").write_text(server_cert.key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    httpd = HTTPServer(("127.0.0.1", 0), _Ok)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def run_gate(port: int, ca: str) -> subprocess.CompletedProcess[str]:
    params = {"glance_url": f"https://127.0.0.1:{port}/", "ca_bundle": ca, "marker": "same-params"}
    return subprocess.run(
        [sys.executable, "-c", script_source("with_ca"), GATE, "grant"],
        input=json.dumps(params),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_gate_trusts_the_stacks_ca_and_names_it_when_it_refuses(https_server: int) -> None:
    trusted = run_gate(https_server, CA.pem)
    assert trusted.returncode == 0, trusted.stderr
    # The script got the same parameters, and its own arguments.
    assert trusted.stdout.strip() == "status 200 same-params grant"
    refused = run_gate(https_server, OTHER_CA.pem)
    assert refused.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr
    assert "(the TLS certificate is not trusted by the CAs of glance:tlsCaBundle)" in refused.stderr
