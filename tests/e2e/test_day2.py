"""Day 2 with the real engine and the official plugins: a security update of Glance's packages
(glance:packageVersion 2:25.1.0-2+deb12u3 -> deb12u5) rolled over the two-host lab behind HAProxy
while a client keeps using the load-balanced endpoint (the older packages: lab/security_update.py).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab.cluster import Cluster
from lab.controller import Lab
from lab.security_update import GLANCE_PACKAGES, INSTALLED_GLANCE, NEW, OLD, seed_glance_packages
from lab.stacks import PulumiCli
from tests.e2e import checks
from tests.e2e.conftest import Timer
from tests.e2e.test_lab_applied import AppliedStack
from tests.e2e.test_lab_stacks import EngineStack, engine_stack

STACK = "lab-two-hosts"
IMAGE_SIZES_MIB = (1, 2, 3)


def qcow2(size_mib: int, directory: Path) -> bytes:
    """A real qcow2 of its own size, so each image has its own checksum."""
    path = directory / f"day2-{size_mib}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), f"{size_mib}M"], check=True, timeout=60)
    return path.read_bytes()


def installed_versions(target: checks.Target) -> list[str]:
    return [target.ssh(INSTALLED_GLANCE, host=host) for host in target.hosts]


@dataclass
class ClientLoop:
    """Uploads, downloads and lists through the load-balanced endpoint while a deploy runs;
    keeps every answer that was not 2xx and every connection error."""

    target: checks.Target
    image_id: str
    data: bytes
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _call(self, method: str, path: str, body: bytes | dict[str, str] | None = None, kind: str = "") -> object:
        session, url = self.session, f"{self.target.glance_url}{path}"
        self.requests += 1
        try:
            status, answer = session.send(method, url, body, kind or "application/json")
        except OSError as error:
            self.failures.append(f"{method} {path}: connection error {error}")
            return None
        if not 200 <= status < 300:
            self.failures.append(f"{method} {path}: {status} {str(answer)[:200]}")
            return None
        return answer

    def _run(self) -> None:
        self.session = self.target.admin()
        round_number = 0
        while not self.stop.is_set():
            round_number += 1
            self._call("GET", "/v2/images?limit=5")
            downloaded = self._call("GET", f"/v2/images/{self.image_id}/file")
            if downloaded is not None and downloaded != self.data:
                self.failures.append("a download differs from what was uploaded")
            if round_number % 3 == 0:
                record = {"name": f"day2-loop-{round_number}", "disk_format": "qcow2", "container_format": "bare"}
                image = self._call("POST", "/v2/images", record)
                if isinstance(image, dict):
                    self._call("PUT", f"/v2/images/{image['id']}/file", self.data, "application/octet-stream")
                    self._call("DELETE", f"/v2/images/{image['id']}")
            self.stop.wait(0.1)

    def __enter__(self) -> ClientLoop:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


@dataclass
class BackendWatch:
    """HAProxy's view of each backend server, sampled every 0.2 s: (monotonic µs, {server: status})."""

    stats_url: str
    samples: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _sample(self) -> None:
        while not self.stop.is_set():
            with urllib.request.urlopen(f"{self.stats_url};csv", timeout=5) as response:
                rows = response.read().decode().splitlines()
            header = rows[0].lstrip("# ").split(",")
            states = {}
            for row in rows[1:]:
                values = dict(zip(header, row.split(","), strict=False))
                if values.get("pxname") == "glance_api" and values.get("svname") not in ("BACKEND", "FRONTEND"):
                    states[values["svname"]] = values["status"]
            self.samples.append((time.monotonic_ns() // 1000, states))
            self.stop.wait(0.2)

    def first(self, server: str, status: str, after: int) -> int:
        """When `server` was first seen in `status` after `after` (monotonic µs)."""
        return next(t for t, states in self.samples if t > after and states.get(server, "").startswith(status))

    def __enter__(self) -> BackendWatch:
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


@dataclass
class Day2:
    stack: EngineStack
    images: dict[str, str] = field(default_factory=dict)  # image id -> sha256 of what was uploaded
    loop_data: bytes = b""
    loop_image: str = ""


@pytest.fixture(scope="class")
def day2(cluster_host: Cluster, pulumi_cli: PulumiCli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day2]:
    seed_glance_packages(cluster_host, OLD)
    for stack in engine_stack(STACK, cluster_host, pulumi_cli, {}):
        stack.set_config("glance:packageVersion", OLD)
        yield Day2(stack)


@pytest.mark.e2e
class TestSecurityUpdateOnTwoHosts:
    def test_up_pinned_installs_the_old_version_on_both_hosts(
        self, day2: Day2, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        with Timer(f"engine {STACK}: up pinned to {OLD}"):
            day2.stack.cli("up", "--yes", "--skip-preview")
        target = day2.stack.target
        assert installed_versions(target) == [OLD, OLD]
        admin = target.admin()
        directory = tmp_path_factory.mktemp("day2-images")
        for size in IMAGE_SIZES_MIB:
            data = qcow2(size, directory)
            image_id = checks.upload(admin, target.glance_url, f"day2-{size}", data)
            day2.images[image_id] = hashlib.sha256(data).hexdigest()
        day2.loop_image, day2.loop_data = image_id, data

    def test_preview_names_old_and_new_version_on_each_install_step(self, day2: Day2) -> None:
        day2.stack.set_config("glance:packageVersion", NEW)
        preview = day2.stack.cli("preview", "--diff")
        for node in ("glance", "glance-2"):
            step = preview[preview.index(f"{node}-install]") :]
            step = step[: step.index("command:remote:Command", 1)] if "command:remote:Command" in step[1:] else step
            assert f"glance-api={OLD}" in step and f"glance-api={NEW}" in step, step[:3000]

    def test_pin_change_rolls_host_by_host_with_no_failed_request(self, day2: Day2) -> None:
        target = day2.stack.target
        names = [host["name"] for host in target.lab.connection["hosts"]]
        before = time.monotonic_ns() // 1000
        with (
            Timer(f"engine {STACK}: security update {OLD} -> {NEW}"),
            BackendWatch(target.lab.connection["load_balancer"]["stats"]) as watch,
            ClientLoop(target, day2.loop_image, day2.loop_data) as loop,
        ):
            day2.stack.cli("up", "--yes", "--skip-preview")
            time.sleep(1)
        print(f"client loop: {loop.requests} requests, {len(loop.failures)} failed")
        assert loop.requests >= 100 and loop.failures == [], loop.failures
        restarts = [checks.unit_down_interval(target, host) for host in target.hosts]
        (first_stop, first_start), (second_stop, second_start) = restarts
        assert before < first_stop < first_start < second_stop < second_start, restarts
        # HAProxy: each backend DOWN before its host stops, and UP again before the next host drains.
        first_down = watch.first(names[0], "DOWN", before)
        first_up = watch.first(names[0], "UP", first_start)
        second_down = watch.first(names[1], "DOWN", before)
        assert first_down < first_stop and second_down < second_stop, (watch.samples, restarts)
        assert first_up < second_down, (first_up, second_down)
        assert watch.first(names[1], "UP", second_start)

    def test_afterwards_both_hosts_run_the_new_version_and_the_schema_is_current(self, day2: Day2) -> None:
        target = day2.stack.target
        assert installed_versions(target) == [NEW, NEW]
        check = target.lab.ssh('su -s /bin/sh -c "glance-manage db check" glance', check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        print(f"glance-manage db check: {check.stdout.strip()}")
        outputs = json.loads(day2.stack.cli("stack", "output", "--json"))
        dump = target.ssh(f"ls -l {outputs['database_dump']}")
        assert NEW.replace(":", "_") in dump
        day2.stack.cli("preview", "--expect-no-changes")

    def test_a_host_changed_by_hand_is_put_back_on_the_pin(self, day2: Day2) -> None:
        target = day2.stack.target
        second = target.hosts[1]
        packages = " ".join(f"{package}={OLD}" for package in GLANCE_PACKAGES)
        target.ssh(f"DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-downgrades {packages}", host=second)
        assert installed_versions(target) == [NEW, OLD]
        preview = day2.stack.cli("preview", "--diff")
        assert "glance-2-install]" in preview and "glance-install]" not in preview, preview[-3000:]
        with Timer(f"engine {STACK}: up correcting a host changed by hand"):
            day2.stack.cli("up", "--yes", "--skip-preview")
        assert installed_versions(target) == [NEW, NEW]
        day2.stack.cli("preview", "--expect-no-changes")

    def test_every_image_downloads_with_its_original_checksum(self, day2: Day2) -> None:
        target = day2.stack.target
        admin = target.admin()
        for image_id, digest in day2.images.items():
            assert hashlib.sha256(checks.download(admin, target.glance_url, image_id)).hexdigest() == digest

    def test_destroy(self, day2: Day2) -> None:
        for image_id in day2.images:
            day2.stack.target.admin().send("DELETE", f"{day2.stack.target.glance_url}/v2/images/{image_id}")
        day2.stack.cli("destroy", "--yes", "--skip-preview")


@pytest.fixture(scope="class")
def applied(cluster_host: Cluster) -> Iterator[AppliedStack]:
    seed_glance_packages(cluster_host, OLD)
    stack = AppliedStack(checks.Target(STACK, cluster_host))
    stack.overrides["packageVersion"] = OLD
    yield stack
    stack.destroy()


@pytest.mark.e2e
class TestSecurityUpdateApplied:
    """The stand-in executor (machines without the plugins) applies the same steps."""

    def test_apply_pinned(self, applied: AppliedStack) -> None:
        with Timer(f"applied {STACK}: create pinned to {OLD}"):
            applied.apply()
        assert installed_versions(applied.target) == [OLD, OLD]

    def test_pin_change_drains_installs_and_restarts_each_host(self, applied: AppliedStack) -> None:
        applied.overrides["packageVersion"] = NEW
        with Timer(f"applied {STACK}: security update {OLD} -> {NEW}"):
            executor = applied.apply()
        assert installed_versions(applied.target) == [NEW, NEW]
        rerun = {name for name, operation in executor.operations.items() if operation != "same"}
        steps = ("drain", "install", "restart", "ready", "undrain")
        assert {f"{node}-{step}" for node in ("glance", "glance-2") for step in steps} <= rerun, rerun
        assert "glance-db-sync" in rerun, rerun
        checks.assert_units_and_config_ownership(applied.target)

    def test_destroy_leaves_nothing(self, applied: AppliedStack) -> None:
        applied.destroy()
        checks.assert_nothing_left(applied.target)


SINGLE = "lab-mariadb"


@pytest.fixture(scope="class")
def single(lab_host: Lab, pulumi_cli: PulumiCli) -> Iterator[EngineStack]:
    yield from engine_stack(SINGLE, lab_host, pulumi_cli, {})


def main_pid(target: checks.Target) -> str:
    return target.ssh(f"systemctl show -p MainPID --value {checks.UNIT}").strip()


@pytest.mark.e2e
class TestConfigReloadOnOneHost:
    def test_up(self, single: EngineStack) -> None:
        single.cli("up", "--yes", "--skip-preview")

    def test_debug_change_reloads_without_a_failed_request(self, single: EngineStack) -> None:
        target = single.target
        pid = main_pid(target)
        single.set_config("glance:debug", "true")
        with Timer(f"engine {SINGLE}: debug on, reloaded"), checks.EndpointPoller(target) as poller:
            single.cli("up", "--yes", "--skip-preview")
            time.sleep(2)
        print(f"poller: {poller.calls} calls, {len(poller.failures)} failed")
        assert poller.calls > 20 and poller.failures == [], poller.failures
        # Reloaded, not restarted: the same main process, and its new workers log at debug level.
        assert main_pid(target) == pid
        assert "debug = True" in target.ssh(f"cat {checks.API_CONF}")
        assert " DEBUG " in target.ssh("tail -n 200 /var/log/glance/glance-api.log")

    def test_destroy(self, single: EngineStack) -> None:
        single.cli("destroy", "--yes", "--skip-preview")
