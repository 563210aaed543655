"""How config files reach the host: a main file a preview can show, credentials apart."""

from __future__ import annotations

import pytest

from tests.unit.harness import (
    GENERATED_PASSWORD,
    SECRET_SIG,
    SECRET_VALUE,
    TEST_SECRETS,
    Deployment,
    plain,
    run_stack,
)

DROP_IN = "/etc/glance/glance.conf.d/50-glance-pulumi-credentials.conf"


def changed(before: Deployment, after: Deployment) -> set[str]:
    inputs = {(r.type, r.name): r.inputs for r in before.registrations}
    return {r.name for r in after.registrations if r.inputs != inputs[(r.type, r.name)]}


@pytest.mark.parametrize("stack", ["debian", "rhel"])
def test_zed_main_file_is_plain_and_credentials_go_to_a_drop_in(stack: str) -> None:
    deployment = run_stack(stack, glancePassword="gl-pw-1", dbPassword="db-pw-1", limitsPassword="li-pw-1")
    main = deployment.named("glance-config-glance-api")
    assert "stdin" not in main.secret_inputs and main.inputs.get("logging") is None
    text = plain(main.inputs["stdin"])
    assert not any(secret in text for secret in ("gl-pw-1", "db-pw-1", "li-pw-1", *TEST_SECRETS.values()))
    assert "[database]" not in text and "password =" not in text
    credentials = deployment.named("glance-config-credentials")
    assert "stdin" in credentials.secret_inputs and f'mv -f "$tmp" {DROP_IN}' in credentials.inputs["create"]
    assert "gl-pw-1" in plain(credentials.inputs["stdin"])
    ownership = deployment.named("glance-ownership").inputs["create"]
    assert f"chown root:glance /etc/glance/glance-api.conf {DROP_IN}" in ownership
    assert "chmod 0750 /etc/glance/glance.conf.d" in ownership
    assert deployment.depends_on("glance-db-sync", "glance-config-credentials")


def test_option_change_shows_in_the_plain_file_only() -> None:
    before, after = run_stack("debian"), run_stack("debian", debug=True)
    assert changed(before, after) == {"glance-config-glance-api", "glance-ownership", "glance-restart"}
    assert "debug = True" in plain(after.named("glance-config-glance-api").inputs["stdin"])


def test_password_change_is_a_secret_change_that_restarts_glance() -> None:
    before = run_stack("debian", glancePassword="first-password")
    after = run_stack("debian", glancePassword="second-password")
    expected = {"glance-config-credentials", "glance-ownership", "glance-restart", "glance-ready", "glance-user"}
    assert changed(before, after) == expected
    for name in ("glance-restart", "glance-ownership"):
        triggers = after.named(name).inputs["triggers"]
        assert triggers[SECRET_SIG] == SECRET_VALUE, name  # the fingerprint covers the credentials
    assert plain(before.named("glance-config-glance-api").inputs) == plain(
        after.named("glance-config-glance-api").inputs
    )


def test_liberty_keeps_both_files_with_credentials_inline() -> None:
    deployment = run_stack("clearlinux")
    for name in ("glance-config-glance-api", "glance-config-glance-registry"):
        config = deployment.named(name)
        assert "stdin" in config.secret_inputs
        assert GENERATED_PASSWORD.replace("$", "$$") in plain(config.inputs["stdin"])
    assert "glance-config-credentials" not in {r.name for r in deployment.registrations}
