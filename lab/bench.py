"""`scripts/bench`: the program's deploy against the install guide run as a plain script.

Each repetition boots the lab twice from its pristine image: on one boot the guide's steps
run as one sequential shell script over SSH (lab/guide-debian-zed.sh, each step timed by the
script itself); on the other `pulumi up` deploys the same lab stack, followed by a converged
preview, a no-op up, a one-option update and a destroy. Repetitions alternate which side goes
first. The engine's own overhead is a preview of an empty program. Where the program's fresh
deploy spends its time comes from the engine's own events (`pulumi up --json`), per resource.
The security update is measured on a fresh boot of the two-controller lab: lab-two-hosts deployed
pinned to the older Glance, then the `pulumi up` that moves the pin to the newer one
(`--only pin-change` measures that row alone).

Without the official plugins the fresh deploy is applied by the stand-in executor (lab/standin/)
and labelled so; the engine-only rows and the pin change are then not measured.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import cluster, controller
from .paths import LOOPBACK, PORTS
from .security_update import NEW, OLD, installed_glance_versions, seed_glance_packages
from .stacks import (
    LAB_STACKS,
    PulumiCli,
    lab_image_file,
    missing_plugins,
    program_config,
    scratch_project,
    write_stack,
)

GUIDE = Path(__file__).with_name("guide-debian-zed.sh")
GUIDE_PHASES = ("database", "keystone", "install", "config", "ownership", "db_sync", "start", "ready", "upload")
# What no tool can avoid: the definition, taken from the script's own run.
CRITICAL_PHASES = ("install", "config", "db_sync", "start", "upload")
PROGRAM_PHASES = ("fresh deploy", "converged preview", "no-op up", "one-option update", "destroy")
PIN_CHANGE = "security update (pin change), two hosts"
PIN_CHANGE_STACK = "lab-two-hosts"
LABEL_WIDTH = 42
REMOTE_IMAGE = "/root/cirros.qcow2"

Samples = dict[str, list[float]]


def timed(run: Callable[[], object]) -> float:
    start = time.monotonic()
    run()
    return time.monotonic() - start


@contextmanager
def fresh_lab() -> Iterator[controller.Lab]:
    """A pristine controller from the lab image, stopped afterwards."""
    controller.shutdown()
    with controller.Lab() as lab:
        yield lab


# ---- the guide as a script -----------------------------------------------------------------------


def guide_environment(stack: str, connection: Mapping[str, Any]) -> dict[str, str]:
    engine = LAB_STACKS[stack]["glance:dbEngine"]
    database = connection[engine]
    env = {
        "DB_ENGINE": engine,
        "DB_ADMIN_USER": database["admin_user"],
        "DB_ADMIN_PASSWORD": database["admin_password"],
        # Passwords as the guide's placeholders are usually filled: letters and digits.
        "GLANCE_DBPASS": secrets.token_hex(12),
        "GLANCE_PASS": secrets.token_hex(12),
        "KEYSTONE_URL": connection["keystone"]["auth_url"],
        "ADMIN_PASS": connection["keystone"]["admin_password"],
        "CONTROLLER": LOOPBACK,
        "MEMCACHED": f"{LOOPBACK}:{PORTS['memcached']}",
        "PG_HBA": connection["postgresql"]["hba_path"],
        "IMAGE_FILE": REMOTE_IMAGE,
    }
    if "glance:keystoneLimits" in LAB_STACKS[stack]:
        env.update(LIMITS="1", LIMITS_PASS=secrets.token_hex(12))
    return env


def run_guide(stack: str, image: Path) -> dict[str, float]:
    """The guide script on a fresh boot: seconds per phase, and its total."""
    with fresh_lab() as lab:
        with image.open("rb") as data:  # the guide's download step, outside the timing
            subprocess.run(controller.ssh_argv(f"cat > {REMOTE_IMAGE}"), stdin=data, check=True, timeout=120)
        # Settings travel as exports on standard input, ahead of the script: nothing in argv.
        env = guide_environment(stack, lab.connection)
        script = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items()) + GUIDE.read_text()
        start = time.monotonic()
        result = lab.ssh("bash -s", input=script, check=False, timeout=1200)
        total = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(
            f"the guide script failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return {**phase_seconds(result.stdout), "total": total}


def phase_seconds(output: str) -> dict[str, float]:
    """Seconds per phase from the script's "@@phase NAME EPOCH" marks (each ends at the next)."""
    marks = [line.split()[1:] for line in output.splitlines() if line.startswith("@@phase ")]
    return {name: float(end) - float(start) for (name, start), (_, end) in itertools.pairwise(marks)}


# ---- the program -----------------------------------------------------------------------------------


def engine_run(pulumi: PulumiCli, stack: str, *args: str) -> str:
    result = pulumi.run(*args, "--stack", stack, check=False)
    if result.returncode != 0:
        raise SystemExit(f"pulumi {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result.stdout


def resource_seconds(event_log: Path) -> dict[str, float]:
    """Seconds from each resource's first step event to its outputs, by resource name; only the
    resources that do work (not the stack, nor the components, which span their children)."""
    started: dict[str, float] = {}
    took: dict[str, float] = {}
    for line in event_log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        for kind in ("resourcePreEvent", "resOutputsEvent"):
            if kind in event:
                urn = event[kind]["metadata"]["urn"]
                type_, name = urn.split("::")[-2:]
                if type_.rsplit("$", 1)[-1].startswith(("glance:", "pulumi:pulumi:Stack")):
                    continue
                if kind == "resourcePreEvent":
                    started.setdefault(name, event["timestamp"])
                elif name in started:
                    took[name] = event["timestamp"] - started[name]
    return took


def run_program(stack: str, image: Path, workdir: Path) -> tuple[dict[str, float], dict[str, float]]:
    """`pulumi up` and what follows it on a fresh boot; per-resource seconds of the up."""
    pulumi = scratch_project(Path(tempfile.mkdtemp(dir=workdir)), Path(tempfile.mkdtemp(dir=workdir)))
    events = workdir / f"events-{secrets.token_hex(4)}.jsonl"
    times: dict[str, float] = {}
    with fresh_lab() as lab:
        write_stack(stack, pulumi, lab.connection, image)
        # --json streams the engine's events, one JSON object a line.
        times["fresh deploy"] = timed(
            lambda: events.write_text(engine_run(pulumi, stack, "up", "--yes", "--skip-preview", "--json"))
        )
        times["converged preview"] = timed(lambda: engine_run(pulumi, stack, "preview", "--expect-no-changes"))
        times["no-op up"] = timed(
            lambda: engine_run(pulumi, stack, "up", "--yes", "--skip-preview", "--expect-no-changes")
        )
        pulumi.run("config", "set", "--stack", stack, "glance:debug", "true")
        times["one-option update"] = timed(lambda: engine_run(pulumi, stack, "up", "--yes", "--skip-preview"))
        times["destroy"] = timed(lambda: engine_run(pulumi, stack, "destroy", "--yes", "--skip-preview"))
    return times, resource_seconds(events)


def run_pin_change(image: Path, workdir: Path) -> float:
    """Seconds of the `pulumi up` moving lab-two-hosts' pin from OLD to NEW, on a fresh cluster
    where the stack was deployed pinned to OLD; both hosts' versions checked before and after."""
    pulumi = scratch_project(Path(tempfile.mkdtemp(dir=workdir)), Path(tempfile.mkdtemp(dir=workdir)))
    with cluster.Cluster() as two_hosts:
        seed_glance_packages(two_hosts, OLD)
        write_stack(PIN_CHANGE_STACK, pulumi, two_hosts.connection, image, overrides={"glance:packageVersion": OLD})
        engine_run(pulumi, PIN_CHANGE_STACK, "up", "--yes", "--skip-preview")
        expect_versions(two_hosts, OLD)
        pulumi.run("config", "set", "--stack", PIN_CHANGE_STACK, "glance:packageVersion", NEW)
        seconds = timed(lambda: engine_run(pulumi, PIN_CHANGE_STACK, "up", "--yes", "--skip-preview"))
        expect_versions(two_hosts, NEW)
    return seconds


def expect_versions(two_hosts: cluster.Cluster, version: str) -> None:
    installed = installed_glance_versions(two_hosts)
    if set(installed) != {version}:
        raise SystemExit(f"glance-api on the two hosts is {installed}, not {version}: the pin change is not measured")


def run_stand_in(stack: str, image: Path) -> tuple[dict[str, float], dict[str, float]]:
    from lab.standin.executor import LabExecutor
    from lab.standin.program import run_program as run_under_mocks

    with fresh_lab() as lab:
        executor = LabExecutor(lab)
        config = program_config(stack, lab.connection, image)
        deploy = timed(lambda: run_under_mocks(config, executor))
        destroy = timed(executor.destroy)
    return {"fresh deploy": deploy, "destroy": destroy}, {}


def empty_program_preview(workdir: Path) -> float:
    """The engine's own cost: `pulumi preview` of a program that declares nothing."""
    project = Path(tempfile.mkdtemp(dir=workdir))
    pulumi = scratch_project(project, Path(tempfile.mkdtemp(dir=workdir)))
    # Same runtime and virtualenv, no config schema, nothing declared.
    (project / "Pulumi.yaml").write_text("name: empty\nruntime:\n  name: python\n  options:\n    virtualenv: venv\n")
    (project / "__main__.py").write_text("")
    pulumi.run("stack", "init", "empty", "--secrets-provider", "passphrase")
    return timed(lambda: engine_run(pulumi, "empty", "preview"))


# ---- the report ------------------------------------------------------------------------------------


def row(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:<{LABEL_WIDTH}} {'n/a':>8}"
    return f"{label:<{LABEL_WIDTH}} {min(values):8.1f} {statistics.median(values):8.1f} {max(values):8.1f}"


def preamble(repetitions: int, engine: str) -> list[str]:
    return [
        f"{repetitions} repetitions; machine: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        f"program run by: {engine}",
        "",
        f"{'phase (seconds)':<{LABEL_WIDTH}} {'min':>8} {'median':>8} {'max':>8}",
    ]


def pin_change_report(repetitions: int, engine: str, pin_change: list[float]) -> str:
    """The table with the pin change's row alone (`--only pin-change`)."""
    return "\n".join([*preamble(repetitions, engine), row(PIN_CHANGE, pin_change), pin_change_note(pin_change)])


def pin_change_note(pin_change: list[float]) -> str:
    if not pin_change:
        return "(the pin change needs the real engine with the official plugins: not measured)"
    return f"({PIN_CHANGE_STACK} deployed pinned to {OLD} on a fresh two-controller boot, then moved to {NEW})"


def report(
    stack: str,
    repetitions: int,
    engine: str,
    guide: Samples,
    program: Samples,
    overhead: list[float],
    resources: Samples,
    pin_change: list[float],
) -> str:
    ratios_script = [p / g for p, g in zip(program["fresh deploy"], guide["total"], strict=True)]
    critical = [sum(run) for run in zip(*(guide[name] for name in CRITICAL_PHASES), strict=True)]
    ratios_critical = [p / c for p, c in zip(program["fresh deploy"], critical, strict=True)]
    lines = [
        f"stack {stack}, sides alternating; both sides: a fresh boot of the same lab image; glance-api's "
        "packages downloaded into its apt cache, not installed",
        *preamble(repetitions, engine),
        *(row(f"guide script: {name}", guide[name]) for name in GUIDE_PHASES),
        row("guide script: total", guide["total"]),
        row("guide script: critical path", critical),
        *(row(f"program: {name}", program.get(name, [])) for name in PROGRAM_PHASES),
        row("engine: preview of an empty program", overhead),
        row(PIN_CHANGE, pin_change),
        pin_change_note(pin_change),
    ]
    if resources:
        slowest = sorted(resources, key=lambda name: -statistics.median(resources[name]))[:10]
        lines += ["", "where the program's fresh deploy spends its time (engine events, per resource):"]
        lines += [row(f"  {name}", resources[name]) for name in slowest]
    lines += [
        "",
        f"ratio fresh-deploy/guide-script: {statistics.median(ratios_script):.2f} (median)",
        f"ratio fresh-deploy/critical-path: {statistics.median(ratios_critical):.2f} (median)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", choices=sorted(LAB_STACKS), default="lab-postgres")
    parser.add_argument("--repetitions", "-n", type=int, default=3)
    parser.add_argument("--only", choices=("pin-change",), help="measure this row alone")
    args = parser.parse_args(argv)
    stand_in = bool(missing_plugins())
    engine = (
        "the stand-in executor in lab/standin/ (the official plugins are missing)"
        if stand_in
        else ("the real Pulumi engine with the official plugins")
    )
    image = lab_image_file()
    pin_change: list[float] = []
    if args.only == "pin-change":
        with tempfile.TemporaryDirectory(prefix="glance-bench-") as scratch:
            if not stand_in:
                pin_change = [run_pin_change(image, Path(scratch)) for _ in range(args.repetitions)]
        print(pin_change_report(args.repetitions, engine, pin_change))
        return 0
    guide: Samples = defaultdict(list)
    program: Samples = defaultdict(list)
    resources: Samples = defaultdict(list)
    overhead: list[float] = []
    with tempfile.TemporaryDirectory(prefix="glance-bench-") as scratch:
        workdir = Path(scratch)
        if not stand_in:
            overhead = [empty_program_preview(workdir) for _ in range(args.repetitions)]
        for repetition in range(args.repetitions):

            def guide_side() -> None:
                for name, seconds in run_guide(args.stack, image).items():
                    guide[name].append(seconds)

            def program_side() -> None:
                times, per_resource = (
                    run_stand_in(args.stack, image) if stand_in else run_program(args.stack, image, workdir)
                )
                for name, seconds in times.items():
                    program[name].append(seconds)
                for name, seconds in per_resource.items():
                    resources[name].append(seconds)

            sides = (guide_side, program_side) if repetition % 2 == 0 else (program_side, guide_side)
            for side in sides:
                side()
            if not stand_in:
                pin_change.append(run_pin_change(image, workdir))
            print(
                f"repetition {repetition + 1}/{args.repetitions}: guide {guide['total'][-1]:.1f}s, "
                f"program {program['fresh deploy'][-1]:.1f}s",
                file=sys.stderr,
            )
    print(report(args.stack, args.repetitions, engine, guide, program, overhead, resources, pin_change))
    return 0


if __name__ == "__main__":
    sys.exit(main())
