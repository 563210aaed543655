"""Notifications to the lab's RabbitMQ, with the transport URL as a secret option.

The real engine deploys lab-mariadb with `[oslo_messaging_notifications] driver = messagingv2`
(apiOptions, plain) and its `transport_url` (apiSecretOptions, a Pulumi secret). A consumer on the
lab then receives image.create, image.upload and image.activate for the CirrOS image, and the
RabbitMQ password is nowhere it must not be: state, engine output, a preview diff, the argv
sampled on the controller, glance-api.conf.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest

from lab import notifications
from lab.controller import Lab
from lab.stacks import PulumiCli
from tests.e2e import checks
from tests.e2e.conftest import Timer
from tests.e2e.test_lab_stacks import EngineStack, engine_stack

STACK = "lab-mariadb"
DRIVER = "oslo_messaging_notifications.driver=messagingv2"
DROP_IN = "/etc/glance/glance.conf.d/50-glance-pulumi-credentials.conf"


@pytest.fixture(scope="class")
def deployed(lab_host: Lab, pulumi_cli: PulumiCli) -> Iterator[EngineStack]:
    rabbitmq = lab_host.connection["rabbitmq"]
    for stack in engine_stack(STACK, lab_host, pulumi_cli, {}):
        stack.target.secrets["rabbitmq password"] = rabbitmq["password"]
        stack.pulumi.run("config", "set", "--stack", STACK, "--path", "glance:apiOptions[0]", DRIVER)
        set_transport_url(stack, rabbitmq["transport_url"])
        notifications.purge(lab_host)
        yield stack


def set_transport_url(stack: EngineStack, url: str) -> None:
    """As the README says: the list item set with --secret --path, the value on standard input."""
    item = f"oslo_messaging_notifications.transport_url={url}"
    stack.pulumi.run("config", "set", "--secret", "--path", "--stack", STACK, "glance:apiSecretOptions[0]", stdin=item)


@pytest.mark.e2e
class TestNotifications:
    def test_up(self, deployed: EngineStack) -> None:
        with Timer(f"engine {STACK} (notifications): up"), checks.ArgvWatcher(deployed.target):
            deployed.cli("up", "--yes", "--skip-preview")
        checks.assert_units_and_config_ownership(deployed.target)

    def test_a_consumer_receives_the_images_events(self, deployed: EngineStack) -> None:
        image_id = deployed.cli("stack", "output", "image_id").strip()
        assert image_id
        events = notifications.wait_for(deployed.target.lab, ["image.create", "image.upload", "image.activate"])
        mine = [event for event, payload in events if payload.get("id") == image_id]
        assert {"image.create", "image.upload", "image.activate"} <= set(mine), events
        assert mine.index("image.create") < mine.index("image.activate")

    def test_the_transport_url_is_only_in_the_credentials_file(self, deployed: EngineStack) -> None:
        password = deployed.target.secrets["rabbitmq password"]
        main = deployed.target.ssh("cat /etc/glance/glance-api.conf")
        assert "driver = messagingv2" in main and "transport_url" not in main and password not in main
        assert "transport_url = rabbit://" in deployed.target.ssh(f"cat {DROP_IN}")
        mode, owner = deployed.target.ssh(f"stat -c '%a %U:%G' {DROP_IN}").split()
        assert owner == "root:glance" and not int(mode, 8) & (stat.S_IWGRP | stat.S_IRWXO), mode

    def test_a_preview_shows_the_secret_option_as_secret(self, deployed: EngineStack) -> None:
        rabbitmq = deployed.target.lab.connection["rabbitmq"]
        # The same broker by another name: a change of the secret option only.
        url = rabbitmq["transport_url"].replace(f"@{rabbitmq['host']}:", "@localhost:")
        assert url != rabbitmq["transport_url"]
        set_transport_url(deployed, url)
        diff = deployed.cli("preview", "--diff", "--color", "never")
        assert "glance-config-credentials" in diff and "[secret]" in diff, diff
        checks.assert_no_secret_in(deployed.target, {"preview --diff": diff}, controller=False)
        deployed.cli("up", "--yes", "--skip-preview")
        assert "@localhost:" in deployed.target.ssh(f"cat {DROP_IN}")

    def test_no_secret_in_state_output_or_controller_argv(self, deployed: EngineStack) -> None:
        exported = deployed.cli("stack", "export")
        places = {"stack export": exported, "engine output": "\n".join(deployed.outputs)}
        checks.assert_no_secret_in(deployed.target, places)

    def test_destroy_leaves_nothing(self, deployed: EngineStack) -> None:
        deployed.cli("destroy", "--yes", "--skip-preview")
        checks.assert_nothing_left(deployed.target)
