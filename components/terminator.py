"""The TLS terminator on each API host: HAProxy in front of glance-api, as kolla's glance-tls-proxy.

HAProxy serves tlsCertificate on Glance's port (9292) and forwards plain http to glance-api on
loopback (rendering.BACKEND_HOST:BACKEND_PORT), telling it the request came over https. It runs
as an instance of its own (unit glance-pulumi-tls, config glance-pulumi.cfg), so a host's own
HAProxy (the package's haproxy.service and haproxy.cfg, e.g. a load balancer) is left alone.
Its files: the unit, the config (plain) and one PEM file with the certificate chain and the key
(secret). All three are written root-only (0600) and never re-owned: systemd and HAProxy's
master process read them as root, before the workers drop privileges. A change of any of them
reloads HAProxy: its master starts new workers with the new certificate while the old ones
finish their requests, so no request fails.
"""

from __future__ import annotations

from components.rendering import BACKEND_HOST, BACKEND_PORT, ConfigFile
from components.settings import Settings
from components.stack_input import GLANCE_PORT

PACKAGE = "haproxy"
UNIT = "glance-pulumi-tls"
UNIT_FILE = f"/etc/systemd/system/{UNIT}.service"
CONFIG = "/etc/haproxy/glance-pulumi.cfg"
PEM = "/etc/haproxy/glance-pulumi.pem"
# Forwarding headers oslo.middleware reads besides X-Forwarded-Proto, which a client could send
# (option forwardfor then adds the real X-Forwarded-For).
SPOOFABLE_HEADERS = ("Forwarded", "X-Forwarded-Host", "X-Forwarded-For", "X-Forwarded-Prefix")
# Image uploads and downloads are long requests: HAProxy must not cut them.
TRANSFER_TIMEOUT = "1h"


def haproxy_sections(settings: Settings) -> dict[str, list[str]]:
    """haproxy.cfg as section header -> directives, in file order."""
    return {
        "global": [
            "log /dev/log local0",
            "chroot /var/lib/haproxy",
            "user haproxy",
            "group haproxy",
            "ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets",
        ],
        "defaults": [
            "log global",
            "mode http",
            "option httplog",
            "option forwardfor",
            "timeout connect 5s",
            f"timeout client {TRANSFER_TIMEOUT}",
            f"timeout server {TRANSFER_TIMEOUT}",
            "timeout http-request 30s",
        ],
        "frontend glance-api": [
            # Every address, IPv4 and IPv6; plain http on this port fails the TLS handshake.
            f"bind :::{GLANCE_PORT} v4v6 ssl crt {PEM}",
            "http-request set-header X-Forwarded-Proto https",
            # glance-api believes the forwarding headers (proxy-header parsing): only ours reach it.
            *(f"http-request del-header {header}" for header in SPOOFABLE_HEADERS),
            "default_backend glance-api",
        ],
        "backend glance-api": [
            "option httpchk GET /healthcheck",
            f"server glance-api {BACKEND_HOST}:{BACKEND_PORT} check",
        ],
    }


def render_haproxy(settings: Settings) -> str:
    lines = ["# Managed by glance-pulumi: edit the stack config, not this file."]
    for header, directives in haproxy_sections(settings).items():
        lines.append(f"\n{header}")
        lines.extend(f"    {directive}" for directive in directives)
    return "\n".join(lines) + "\n"


def unit_sections() -> dict[str, list[str]]:
    """The systemd unit, as the distros' haproxy.service runs HAProxy: master-worker mode, which
    reloads on SIGUSR2 after checking the new config (a bad one leaves the running one serving)."""
    check = f"haproxy -Ws -f {CONFIG} -c -q"
    return {
        "Unit": [
            "Description=HAProxy: TLS in front of glance-api (glance-pulumi)",
            "After=network-online.target",
            "Wants=network-online.target",
        ],
        "Service": [
            f"ExecStartPre={check}",
            f"ExecStart=haproxy -Ws -f {CONFIG} -p /run/{UNIT}.pid",
            f"ExecReload={check}",
            "ExecReload=/bin/kill -USR2 $MAINPID",
            "KillMode=mixed",
            "Restart=always",
            "SuccessExitStatus=143",
            "Type=notify",
        ],
        "Install": ["WantedBy=multi-user.target"],
    }


def render_unit() -> str:
    lines = ["# Managed by glance-pulumi: edit the stack config, not this file."]
    for section, settings in unit_sections().items():
        lines += [f"[{section}]", *settings, ""]
    return "\n".join(lines)


def render_pem(settings: Settings) -> str:
    """HAProxy's `crt` file: the chain, then its key."""
    tls = settings.tls
    if tls.certificate is None or tls.private_key is None:
        raise ValueError("the terminator serves tlsCertificate with tlsPrivateKey")
    return tls.certificate + tls.private_key.get_secret_value()


def config_files(settings: Settings) -> tuple[ConfigFile, ...]:
    """The terminator's files, without the secret first (none when the hosts serve plain http)."""
    if not settings.tls.on_hosts:
        return ()
    return (
        ConfigFile(UNIT_FILE, "tls-unit-file", False, lambda _, __: render_unit()),
        ConfigFile(CONFIG, "haproxy", False, lambda _, __: render_haproxy(settings)),
        ConfigFile(PEM, "tls-certificate", True, lambda _, __: render_pem(settings)),
    )
