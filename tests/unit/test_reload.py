"""Config changes glance-api reloads on SIGHUP (components/reload.py), and those that restart it drained."""

from __future__ import annotations

from components.reload import split
from components.rendering import API_CONF
from tests.unit.harness import run_stack
from tests.unit.test_api_hosts import two_hosts
from tests.unit.test_config_delivery import changed


def test_debug_is_reloaded_on_every_host_without_a_drain() -> None:
    steps = changed(two_hosts(), two_hosts(debug=True))
    assert steps == {
        f"{node}-{step}" for node in ("glance", "glance-2") for step in ("config-glance-api", "ownership", "reload")
    }
    script = two_hosts().named("glance-2-reload").inputs["create"]
    assert "systemctl kill --kill-whom=main --signal=HUP glance-api.service" in script


def test_an_option_read_at_start_restarts_and_reloads_nothing() -> None:
    before, after = run_stack("debian"), run_stack("debian", apiOptions=["DEFAULT.image_size_cap=1099511627776"])
    assert changed(before, after) == {"glance-config-glance-api", "glance-ownership", "glance-drain", "glance-restart"}


def test_one_worker_process_does_not_handle_sighup_so_every_change_restarts() -> None:
    before = run_stack("debian", apiOptions=["DEFAULT.workers=0"])
    after = run_stack("debian", apiOptions=["DEFAULT.workers=0"], debug=True)
    assert "glance-reload" not in {r.name for r in after.registrations}
    assert {"glance-drain", "glance-restart"} <= changed(before, after)


def test_liberty_restarts() -> None:
    assert "glance-reload" not in {r.name for r in run_stack("clearlinux").registrations}


def test_split_leaves_a_file_without_reloadable_options_as_it_is() -> None:
    plain = "# Managed\n\n[keystone_authtoken]\nauth_type = password\n"
    with_debug = "# Managed\n\n[DEFAULT]\ndebug = True\n\n[keystone_authtoken]\nauth_type = password\n"
    assert split(API_CONF, plain) == (plain, "")
    assert split(API_CONF, with_debug) == (plain, "[DEFAULT] debug = True")
    assert split("/etc/glance/other.conf", with_debug) == (with_debug, "")
