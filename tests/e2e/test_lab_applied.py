"""The program's declared resources applied to the lab for real by the stand-in executor.

Per lab stack, in order: apply from nothing; verify from outside; re-run every remote
command (they must converge); change one Glance option and apply only what the program's
inputs say changed; destroy and verify nothing is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lab.controller import Lab
from lab.stacks import LAB_STACKS, lab_image_file, program_config
from lab.standin.executor import Applied, LabExecutor
from tests.e2e import checks
from tests.e2e.conftest import Timer
from tests.recording import Deployment, run_program


class AppliedStack:
    def __init__(self, target: checks.Target) -> None:
        self.target = target
        self.overrides: dict[str, Any] = {}
        self.executor: LabExecutor | None = None
        self.declared = Deployment()

    def config(self) -> dict[str, Any]:
        overrides = {key.removeprefix("glance:"): value for key, value in self.overrides.items()}
        return {**program_config(self.target.stack, self.target.lab.connection, lab_image_file()), **overrides}

    def apply(self) -> LabExecutor:
        previous: list[Applied] = self.executor.applied if self.executor else []
        executor = LabExecutor(self.target.lab, previous)
        self.declared = Deployment()
        run_program(self.config(), executor, self.declared)
        self.executor = executor
        return executor

    def destroy(self) -> None:
        if self.executor is not None:
            self.executor.destroy()
            self.executor = None


@pytest.fixture(scope="class", params=sorted(LAB_STACKS))
def stack(request: pytest.FixtureRequest, lab_host: Lab) -> Iterator[AppliedStack]:
    applied = AppliedStack(checks.Target(request.param, lab_host))
    yield applied
    applied.destroy()  # whatever happened, leave nothing for the next stack


@pytest.mark.e2e
class TestAppliedLabStack:
    def test_apply_from_nothing(self, stack: AppliedStack) -> None:
        with Timer(f"applied {stack.target.stack}: create"), checks.ArgvWatcher(stack.target):
            executor = stack.apply()
        assert set(executor.operations.values()) == {"create", "same"}
        checks.assert_units_and_config_ownership(stack.target)

    def test_glance_user_authenticates_through_keystone(self, stack: AppliedStack) -> None:
        checks.assert_glance_user_authenticates(stack.target)

    def test_image_is_active_with_its_bytes_in_the_store(self, stack: AppliedStack) -> None:
        checks.assert_image_active_with_bytes_in_store(stack.target)

    def test_stores_as_declared(self, stack: AppliedStack) -> None:
        checks.assert_stores_as_declared(stack.target)

    def test_database_has_glance_tables(self, stack: AppliedStack) -> None:
        checks.assert_glance_tables(stack.target)

    def test_keystone_objects(self, stack: AppliedStack) -> None:
        checks.assert_keystone_objects(stack.target)

    def test_limits_enforced_exactly_when_enabled(self, stack: AppliedStack) -> None:
        if stack.target.limits_enabled:
            checks.assert_limits_enforced(stack.target)
        else:
            checks.assert_no_limits(stack.target)

    def test_every_remote_command_converges_when_run_again(self, stack: AppliedStack) -> None:
        assert stack.executor is not None
        started = checks.unit_started_at(stack.target)
        with Timer(f"applied {stack.target.stack}: re-run every command"), checks.ArgvWatcher(stack.target):
            for resource in list(stack.executor.applied):
                if resource.type == "command:remote:Command":
                    stack.executor.run_command(
                        resource.type, resource.name, resource.inputs["create"], resource.inputs.get("stdin")
                    )
        checks.assert_units_and_config_ownership(stack.target)
        checks.assert_glance_user_authenticates(stack.target)
        assert checks.unit_started_at(stack.target) != started  # the restart step did restart

    def test_second_apply_changes_nothing(self, stack: AppliedStack) -> None:
        executor = stack.apply()
        assert set(executor.operations.values()) == {"same"}

    def test_option_change_touches_only_config_and_reload(self, stack: AppliedStack) -> None:
        started = checks.unit_started_at(stack.target)
        stack.overrides["glance:debug"] = True
        with Timer(f"applied {stack.target.stack}: update one option"), checks.ArgvWatcher(stack.target):
            executor = stack.apply()
        changed = {name: op for name, op in executor.operations.items() if op != "same"}
        assert changed == {
            "glance-config-glance-api": "update",
            "glance-ownership": "replace",
            "glance-reload": "replace",
        }
        assert checks.api_conf(stack.target)["DEFAULT"]["debug"] == "True"
        # Reloaded on SIGHUP, not restarted.
        assert checks.unit_started_at(stack.target) == started
        image = stack.target.admin().get(f"{stack.target.glance_url}/v2/images/{stack.target.image_id}")
        assert image["status"] == "active"

    def test_no_secret_in_command_lines_output_or_controller_argv(self, stack: AppliedStack) -> None:
        assert stack.executor is not None
        declared = "\n".join(
            str(r.inputs.get(field, ""))
            for r in stack.declared.registrations
            if r.type.startswith("command:")
            for field in ("create", "update", "delete")
        )
        output = "\n".join(stack.executor.command_output)
        checks.assert_no_secret_in(stack.target, {"command lines": declared, "command output": output})

    def test_destroy_leaves_nothing(self, stack: AppliedStack) -> None:
        with Timer(f"applied {stack.target.stack}: destroy"):
            stack.destroy()
        checks.assert_nothing_left(stack.target)
