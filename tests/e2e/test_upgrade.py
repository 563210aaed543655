"""An upgrade changes nothing it should not: a stack deployed by an earlier version of the
program shows no change to any of its resources in `pulumi preview` with this one (real
engine, official plugins) but the new ones: the GlanceService component, the drain, undrain and
reload steps, and the readiness gate's new script.

The earlier version is a commit of this repository (PREVIOUS): its program files are
checked out into the scratch project, lab-mariadb is deployed with them, then the project
gets this checkout's files and the preview must be empty. Move PREVIOUS forward only with
an upgrade note in the README when a change is meant to show in deployed stacks.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.controller import Lab
from lab.stacks import PROJECT_FILES, REPO, PulumiCli, copy_program
from tests.e2e import checks
from tests.e2e.conftest import Timer
from tests.e2e.test_lab_stacks import CONFIG_STEPS, EngineStack, engine_stack

STACK = "lab-mariadb"
# The components laid out as separate children of the stack, before GlanceService held them.
PREVIOUS = "daf96d6"
# Meant to show since then (README: upgrade notes): image import's options and staging directory,
# a new config that restarts Glance once, drained (the drain, undrain and reload steps are new; the
# readiness gate's script now takes a drained host's 503 as up).
ANNOUNCED_STEPS = {
    "glance-work-dirs",
    "glance-drain",
    "glance-undrain",
    "glance-restart",
    "glance-ready",
    *CONFIG_STEPS,
}


def place_program(project: Path, ref: str | None) -> None:
    """The project's program files from commit `ref` (None: this checkout)."""
    for name in PROJECT_FILES:
        target = project / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    if ref is None:
        copy_program(REPO, project)
        return
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", ref, *PROJECT_FILES], capture_output=True, check=False
    )
    if archive.returncode != 0:
        pytest.fail(f"cannot read commit {ref} of this repository (a full clone is needed): {archive.stderr!r}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(project, filter="data")


@pytest.fixture(scope="class")
def deployed(lab_host: Lab, pulumi_cli: PulumiCli) -> Iterator[EngineStack]:
    try:
        yield from engine_stack(STACK, lab_host, pulumi_cli, {})
    finally:
        place_program(pulumi_cli.cwd, None)


@pytest.mark.e2e
class TestUpgradeFromThePreviousVersion:
    def test_the_previous_version_deploys(self, deployed: EngineStack) -> None:
        place_program(deployed.pulumi.cwd, PREVIOUS)
        with Timer(f"engine {STACK} (upgrade): up with {PREVIOUS}"):
            deployed.cli("up", "--yes", "--skip-preview")
        checks.assert_units_and_config_ownership(deployed.target)

    def test_this_version_previews_no_changes(self, deployed: EngineStack) -> None:
        place_program(deployed.pulumi.cwd, None)
        plan = json.loads(deployed.cli("preview", "--json"))
        steps = {step["urn"]: step["op"] for step in plan.get("steps", []) if step["op"] not in ("same", "read")}
        # New: the GlanceService component itself, which has no provider and does nothing; every
        # other resource of the old layout is found through its alias, and only what the upgrade
        # notes announce changes.
        service = [urn for urn in steps if urn.endswith("::glance:service:GlanceService::glance")]
        assert [steps[urn] for urn in service] == ["create"], steps
        assert {urn.rsplit("::", 1)[-1] for urn in steps if urn not in service} == ANNOUNCED_STEPS, steps
        deployed.cli("up", "--yes", "--skip-preview")
        deployed.cli("preview", "--expect-no-changes")

    def test_destroy_leaves_nothing(self, deployed: EngineStack) -> None:
        deployed.cli("destroy", "--yes", "--skip-preview")
        checks.assert_nothing_left(deployed.target)
