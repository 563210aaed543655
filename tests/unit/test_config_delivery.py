"""How config files reach the host: a main file a preview can show, credentials apart."""

from __future__ import annotations

import json

import pytest

from components.settings import ConfigError, load_settings
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
    assert changed(before, after) == {"glance-config-glance-api", "glance-ownership", "glance-reload"}
    assert "debug = True" in plain(after.named("glance-config-glance-api").inputs["stdin"])


def test_password_change_is_a_secret_change_that_restarts_glance() -> None:
    before = run_stack("debian", glancePassword="first-password")
    after = run_stack("debian", glancePassword="second-password")
    expected = {"glance-config-credentials", "glance-ownership", "glance-drain", "glance-restart", "glance-ready"}
    expected |= {"glance-user"}
    assert changed(before, after) == expected
    for name in ("glance-drain", "glance-restart", "glance-ownership"):
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


TRANSPORT = "oslo_messaging_notifications.transport_url=rabbit://glance:s3cr#t%40@mq.example:5672/"


def test_secret_options_go_to_the_credentials_file_only() -> None:
    deployment = run_stack(
        "debian", apiSecretOptions=[TRANSPORT], apiOptions=["oslo_messaging_notifications.driver=messagingv2"]
    )
    main = plain(deployment.named("glance-config-glance-api").inputs["stdin"])
    assert "[oslo_messaging_notifications]\ndriver = messagingv2" in main and "s3cr" not in main
    credentials = deployment.named("glance-config-credentials")
    assert "stdin" in credentials.secret_inputs
    assert "transport_url = rabbit://glance:s3cr#t%40@mq.example:5672/" in plain(credentials.inputs["stdin"])


def test_a_secret_option_change_is_a_secret_change_that_restarts_glance() -> None:
    before = run_stack("debian", apiSecretOptions=[TRANSPORT])
    after = run_stack("debian", apiSecretOptions=[TRANSPORT.replace("s3cr", "n3w")])
    assert changed(before, after) == {"glance-config-credentials", "glance-ownership", "glance-drain", "glance-restart"}


def test_liberty_writes_secret_options_into_its_secret_files() -> None:
    deployment = run_stack("clearlinux", apiSecretOptions=[TRANSPORT])
    config = deployment.named("glance-config-glance-api")
    assert "stdin" in config.secret_inputs and "s3cr#t%40" in plain(config.inputs["stdin"])


def test_secret_options_in_plaintext_are_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"glance:apiSecretOptions holds a credential: set it with `pulumi config set --secret"
    ):
        load_settings(
            {"profile": "debian", "apiSecretOptions": json.dumps([TRANSPORT]), **TEST_SECRETS}, frozenset(TEST_SECRETS)
        )


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("paste_deploy.flavor=", "paste_deploy.flavor is set by the program"),
        ("database.connection=mysql+pymysql://glance:pw@db/glance", "database.connection is set by the program"),
        ("keystone_authtoken.password=hunter2", "keystone_authtoken.password is set by the program"),
        ("oslo_limit.username=someone", "oslo_limit.username is set by the program"),
        (
            "oslo_messaging_notifications.transport_url=rabbit://g:pw@mq/",
            "oslo_messaging_notifications.transport_url holds a credential",
        ),
        ("profiler.hmac_keys=abc", "profiler.hmac_keys holds a credential"),
        ("DEFAULT.admin_password=x", "DEFAULT.admin_password holds a credential"),
        ("keystone_authtoken.admin_token=x", "keystone_authtoken.admin_token holds a credential"),
        ("glance_store.swift_store_key=x", "glance_store.swift_store_key holds a credential"),
        ("DEFAULT.public_endpoint=http://user:pw@images.example", "DEFAULT.public_endpoint holds a credential"),
    ],
)
def test_api_options_refuse_owned_and_credential_options(item: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        run_stack("debian", apiOptions=["DEFAULT.workers=2", item])
    assert f"glance:apiOptions[1] {message}" in str(refused.value)


def test_secret_options_refuse_owned_options_without_showing_the_value() -> None:
    with pytest.raises(ConfigError) as refused:
        run_stack("debian", apiSecretOptions=["keystone_authtoken.password=do-not-print-me"])
    assert "glance:apiSecretOptions[0] keystone_authtoken.password is set by the program" in str(refused.value)
    assert "do-not-print-me" not in str(refused.value)


def test_ordinary_options_stay_allowed() -> None:
    options = [
        "DEFAULT.workers=2",
        "keystone_authtoken.service_token_roles_required=true",
        "oslo_messaging_notifications.driver=messagingv2",
        "DEFAULT.public_endpoint=https://images.example",
    ]
    text = plain(run_stack("debian", apiOptions=options).named("glance-config-glance-api").inputs["stdin"])
    assert "workers = 2" in text and "service_token_roles_required = true" in text
