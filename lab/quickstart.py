"""`scripts/quickstart`: deploy a lab stack onto the running lab controller.

With every provider plugin in the toolchain this is plain `pulumi up` of the lab stack.
On a machine that cannot get the official plugins, the engine cannot load them, so the
program's declared resources are applied by the stand-in executor (lab/standin/) instead, and
it says so: the same program, settings, commands and config files, deployed for real,
but without Pulumi state. Tear down with `python3 -m lab down`.
"""

from __future__ import annotations

import subprocess
import sys

from lab import controller
from lab.stacks import LAB_STACKS, REPO, PulumiCli, lab_image_file, missing_plugins, program_config, write_stack


def with_engine(stack: str, fresh_lab: bool) -> int:
    pulumi = PulumiCli(argv=[str(REPO / "scripts" / "pulumi")], cwd=REPO, env={})
    if fresh_lab:
        # A new lab boot is a pristine controller: state from an earlier boot describes nothing.
        pulumi.run("stack", "rm", "--yes", "--force", stack, check=False)
    write_stack(stack, pulumi, controller.read_connection(), lab_image_file())
    return subprocess.run([*pulumi.argv, "up", "--yes", "--stack", stack], cwd=REPO, check=False).returncode


def with_stand_in(stack: str, fresh_lab: bool) -> int:
    # A test double, loaded only on this fallback path.
    from lab.standin.executor import GLANCE_URL, LabExecutor
    from lab.standin.program import run_program

    if not fresh_lab:
        # The stand-in keeps no state to converge from: start again on a pristine controller.
        controller.shutdown()
        controller.boot()
    lab = controller.Lab()
    lab.connection = controller.read_connection()
    executor = LabExecutor(lab)
    run_program(program_config(stack, lab.connection, lab_image_file()), executor)
    state = lab.ssh("systemctl is-active glance-api.service", check=False).stdout.strip()
    image = next(a for a in executor.applied if a.type == "openstack:images/image:Image")
    print(f"deployed {len(executor.applied)} resources; glance-api is {state} at {GLANCE_URL}")
    print(f"image cirros {image.id} is active; tear down with: python3 -m lab down")
    return 0 if state == "active" else 1


def main(argv: list[str]) -> int:
    stack = argv[0] if argv else "lab-mariadb"
    fresh_lab = "--fresh-lab" in argv[1:]
    if stack not in LAB_STACKS:
        print(f"unknown lab stack {stack!r}; choose one of {', '.join(sorted(LAB_STACKS))}", file=sys.stderr)
        return 2
    missing = missing_plugins()
    if not missing:
        return with_engine(stack, fresh_lab)
    print(
        f"note: the toolchain lacks the official resource plugins {', '.join(missing)} (install them with "
        "GLANCE_PULUMI_PLUGIN_DIR, see the README), so the program's resources are applied by the "
        "stand-in executor (lab/standin/) instead of `pulumi up`",
        file=sys.stderr,
    )
    return with_stand_in(stack, fresh_lab)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
