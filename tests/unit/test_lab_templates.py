"""The lab's config templates, rendered for both topologies' nodes and parsed back, without
booting anything; and the image cache key, which must change with any of them."""

from __future__ import annotations

import configparser
import dataclasses
import grp
import os
import pwd
import shutil
from pathlib import Path

import pytest

from lab import image
from lab.guest import render
from lab.topology import CLUSTER, LAB

SECRETS = {"keystone_db_password": "KeystoneDb1", "swift_service_password": "SwiftPass2"}
PLANS = {
    "lab": LAB.node_plan(LAB.primary),
    "controller": CLUSTER.node_plan(CLUSTER.nodes[0]),
    "controller2": CLUSTER.node_plan(CLUSTER.nodes[1]),
}


def _template(plan: render.NodePlan, target: str) -> render.ConfigTemplate:
    return next(t for templates in render.services(plan).values() for t in templates if t.target == target)


def _ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.read_string(text)
    return parser


@pytest.mark.parametrize("node", sorted(PLANS))
def test_every_template_renders_and_only_two_need_secrets(node: str) -> None:
    plan = PLANS[node]
    values = render.node_values(plan)
    needing = {}
    for templates in render.services(plan).values():
        for template in templates:
            names = render.secret_names(template, {**values, **template.values})
            if names:
                needing[template.target] = names
            text = render.render(template, plan, SECRETS)
            assert "${" not in text and "$$" not in text, template.target
    assert needing == {
        "/etc/keystone/keystone.conf": {"keystone_db_password"},
        "/etc/swift/proxy-server.conf": {"swift_service_password"},
    }
    with pytest.raises(KeyError):
        render.render(_template(plan, "/etc/swift/proxy-server.conf"), plan)


def test_the_single_lab_binds_loopback_only() -> None:
    plan = PLANS["lab"]
    proxy = _ini(render.render(_template(plan, "/etc/swift/proxy-server.conf"), plan, SECRETS))
    assert proxy["DEFAULT"]["bind_ip"] == "127.0.0.1" and proxy["DEFAULT"]["bind_port"] == "8080"
    assert proxy["filter:authtoken"]["www_authenticate_uri"] == "http://127.0.0.1:5000/v3"
    assert proxy["filter:authtoken"]["password"] == SECRETS["swift_service_password"]
    sshd = render.render(_template(plan, "/etc/ssh/sshd_config.d/50-lab.conf"), plan).splitlines()
    assert [line for line in sshd if line.startswith(("Port", "ListenAddress"))] == [
        "Port 2222",
        "ListenAddress 127.0.0.1",
    ]
    hba = render.render(_template(plan, "/etc/postgresql/15/main/pg_hba.conf"), plan)
    assert hba.endswith("host    replication     all             ::1/128                 scram-sha-256\n")
    assert render.services(plan)["haproxy"] == ()
    assert render.render(_template(plan, "/etc/hosts"), plan).splitlines()[:2] == [
        "127.0.0.1\tlocalhost",
        "127.0.1.1\tcontroller",
    ]


def test_a_cluster_node_adds_its_address() -> None:
    plan = PLANS["controller"]
    proxy = _ini(render.render(_template(plan, "/etc/swift/proxy-server.conf"), plan, SECRETS))
    assert proxy["DEFAULT"]["bind_ip"] == "0.0.0.0"
    assert proxy["filter:authtoken"]["www_authenticate_uri"] == "http://10.77.0.11:5000/v3"
    assert proxy["filter:authtoken"]["auth_url"] == "http://127.0.0.1:5000/v3"  # its own client: loopback
    storage = _ini(render.render(_template(plan, "/etc/swift/object-server.conf"), plan))
    assert (storage["DEFAULT"]["bind_ip"], storage["DEFAULT"]["bind_port"]) == ("127.0.0.1", "6200")
    assert storage["app:object-server"]["use"] == "egg:swift#object"
    memcached = render.render(_template(plan, "/etc/memcached.conf"), plan).splitlines()
    assert "-l 127.0.0.1,10.77.0.11" in memcached
    rabbit = render.render(_template(plan, "/etc/rabbitmq/rabbitmq.conf"), plan).splitlines()
    assert [line for line in rabbit if line.startswith("listeners.")] == [
        "listeners.tcp.1 = 127.0.0.1:5672",
        "listeners.tcp.2 = 10.77.0.11:5672",
    ]
    hba = render.render(_template(plan, "/etc/postgresql/15/main/pg_hba.conf"), plan).splitlines()
    assert hba[-1].split() == ["host", "all", "all", "10.77.0.0/24", "scram-sha-256"]
    haproxy = render.render(_template(plan, "/etc/haproxy/haproxy.cfg"), plan)
    assert "    bind 10.77.0.11:9200\n" in haproxy and "    bind 10.77.0.11:9201\n" in haproxy
    assert "    server controller 10.77.0.11:9292 check\n    server controller2 10.77.0.12:9292 check\n" in haproxy
    assert render.services(PLANS["controller2"])["haproxy"] == ()  # HAProxy on the first only


def test_plans_round_trip_through_json() -> None:
    for plan in PLANS.values():
        assert render.NodePlan.from_json(plan.to_json()) == dataclasses.replace(plan, ports=dict(plan.ports))


def _owned_by_me(template: render.ConfigTemplate, target: Path) -> render.ConfigTemplate:
    me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    return dataclasses.replace(template, target=str(target), owner=me, group=group)


def test_a_node_boot_keeps_the_installed_secret(tmp_path: Path) -> None:
    """What lab-cluster.service does with keep_secrets: the password the build wrote stays,
    the address changes; a second render writes nothing."""
    single, node = PLANS["lab"], PLANS["controller"]
    template = _owned_by_me(_template(single, "/etc/swift/proxy-server.conf"), tmp_path / "proxy-server.conf")
    assert render.install(template, render.render(template, single, SECRETS))
    assert (tmp_path / "proxy-server.conf").stat().st_mode & 0o777 == 0o640
    kept = render.installed_secrets(template, {"swift_service_password"})
    assert kept == {"swift_service_password": SECRETS["swift_service_password"]}
    assert render.install(template, render.render(template, node, kept))
    proxy = _ini((tmp_path / "proxy-server.conf").read_text())
    assert proxy["DEFAULT"]["bind_ip"] == "0.0.0.0"
    assert proxy["filter:authtoken"]["password"] == SECRETS["swift_service_password"]
    assert not render.install(template, render.render(template, node, kept))
    assert render.installed_secrets(dataclasses.replace(template, target=str(tmp_path / "absent")), {"x"}) == {}


def test_the_image_cache_key_covers_templates_and_guest_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = image.recipe_files()
    guest = render.GUEST_PATH.lstrip("/")
    assert f"{guest}/templates/swift/proxy-server.conf" in files
    assert f"{guest}/guest/render.py" in files and f"{guest}/guest/__main__.py" in files
    assert render.NodePlan.from_json(files[render.IMAGE_PLAN.lstrip("/")].decode()) == render.NodePlan.from_json(
        PLANS["lab"].to_json()
    )
    before = image.image_hash()
    copy = tmp_path / "templates"
    shutil.copytree(render.TEMPLATES, copy)
    monkeypatch.setattr(render, "TEMPLATES", copy)
    assert image.image_hash() == before
    (copy / "memcached/memcached.conf").write_text("-m 128\n")
    assert image.image_hash() != before
