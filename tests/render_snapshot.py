"""Snapshot what the program renders for every example stack, and compare two snapshots.

A refactoring must leave every rendered file byte-identical. This runs the program under the
unit tests' mocks (tests/unit/harness.py) for every stack in stacks/, every lab stack (lab/stacks.py,
on a made-up lab connection) and a few variants that exercise the derived defaults, and records
each registration: its inputs with the secret
wrappers removed (every command's create script and stdin, every config file's text), which
inputs travel as secrets, parent, dependencies, protect and provider.

    venv/bin/python -m tests.render_snapshot --write /tmp/render-before.json
    ... change the code ...
    venv/bin/python -m tests.render_snapshot --compare /tmp/render-before.json

--compare exits 1 and names each resource and field that differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lab import stacks
from tests.unit.harness import (
    TEST_HOST_KEY,
    TEST_SECRETS,
    pinned,
    plain,
    project_defaults,
    run_program,
    stack_config,
    stack_names,
)

LB = "https://glance.example:9292"
# What a booted lab reports (lab/stacks.py reads it), made up: no lab is booted.
LAB_CONNECTION: dict[str, Any] = {
    "ssh": {"host": "127.0.0.1", "port": 2222, "host_key": TEST_HOST_KEY},
    "memcached": "127.0.0.1:11211",
    "mysql": {"admin_user": "root"},
    "postgresql": {"admin_user": "postgres", "hba_path": "/etc/postgresql/15/main/pg_hba.conf"},
    "keystone": {
        "auth_url": "http://127.0.0.1:5000/v3",
        "admin_user": "admin",
        "admin_project": "admin",
        "region": "RegionOne",
    },
    "hosts": [{"address": "10.0.0.11"}, {"address": "10.0.0.12"}],
    "load_balancer": {"url": "http://10.0.0.10:9292"},
}
# The lab stacks upload a local image file; its path is part of what is rendered.
LAB_IMAGE = Path("/var/tmp/glance-render-snapshot/cirros-lab.qcow2")


def _variants() -> dict[str, dict[str, Any]]:
    """The config of every committed stack, and of what the defaults and a few switches derive."""
    variants = {stack: {**stack_config(stack), **TEST_SECRETS} for stack in stack_names()}
    for profile in ("clearlinux", "rhel", "debian"):
        # Only the required keys: every other value comes from Pulumi.yaml's defaults.
        variants[f"defaults-{profile}"] = {
            **project_defaults(),
            "profile": profile,
            **TEST_SECRETS,
            **pinned("controller"),
        }
    variants["debian-postgresql"] = {**variants["debian"], "dbEngine": "postgresql"}
    variants["debian-limits"] = {**variants["debian"], "keystoneLimits": True}
    variants["debian-ipv6"] = {**variants["defaults-debian"], "controllerHost": "fd00::11", **pinned("fd00::11")}
    LAB_IMAGE.parent.mkdir(parents=True, exist_ok=True)
    LAB_IMAGE.write_bytes(b"QFI\xfb")
    for stack in [*stacks.LAB_STACKS, *stacks.CLUSTER_STACKS]:
        config = stacks.plain_config(stack, LAB_CONNECTION, LAB_IMAGE)
        variants[stack] = {**{key.removeprefix("glance:"): value for key, value in config.items()}, **TEST_SECRETS}
    hosts = ["10.0.0.11", "10.0.0.12"]
    variants["debian-swift-two-hosts"] = {
        **variants["debian-swift"],
        **pinned(*hosts),
        "apiHosts": hosts,
        "publicUrl": LB,
        "tlsTermination": "loadBalancer",
        "internalUrl": "",
        "adminUrl": "",
        "stores": [{"id": "objects", "type": "swift", "createContainer": True}],
        "defaultStore": "",
    }
    return variants


def snapshot() -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {}
    for variant, config in _variants().items():
        result[variant] = [
            {
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "inputs": plain(r.inputs),
                "secret_inputs": sorted(r.secret_inputs),
                "dependencies": sorted(r.dependencies),
                "protect": r.protect,
                "additional_secret_outputs": sorted(r.additional_secret_outputs),
                "provider": r.provider,
            }
            # The engine registers concurrently: the order is not part of the output.
            for r in sorted(run_program(config).registrations, key=lambda r: (r.type, r.name))
        ]
    return result


def compare(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One line per variant: identical, or what differs."""
    lines: list[str] = []
    for variant in sorted(before.keys() | after.keys()):
        if variant not in after or variant not in before:
            lines.append(f"{variant}: only in the {'before' if variant in before else 'after'} snapshot")
            continue
        old = {(r["type"], r["name"]): r for r in before[variant]}
        new = {(r["type"], r["name"]): r for r in after[variant]}
        problems = [f"  {kind} {name}: removed" for kind, name in sorted(old.keys() - new.keys())]
        problems += [f"  {kind} {name}: added" for kind, name in sorted(new.keys() - old.keys())]
        for key in sorted(old.keys() & new.keys()):
            fields = sorted(f for f in old[key].keys() | new[key].keys() if old[key].get(f) != new[key].get(f))
            if "inputs" in fields:
                inputs = old[key]["inputs"].keys() | new[key]["inputs"].keys()
                changed = sorted(i for i in inputs if old[key]["inputs"].get(i) != new[key]["inputs"].get(i))
                fields[fields.index("inputs")] = f"inputs ({', '.join(changed)})"
            if fields:
                problems.append(f"  {key[0]} {key[1]}: {', '.join(fields)} differ")
        if problems:
            lines.append(f"{variant}: {len(problems)} difference(s)")
            lines.extend(problems)
        else:
            lines.append(f"{variant}: {len(new)} resources, identical")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, metavar="FILE", help="write the snapshot to FILE")
    mode.add_argument("--compare", type=Path, metavar="FILE", help="compare the program's output now with FILE")
    args = parser.parse_args(argv)
    current = snapshot()
    if args.write:
        args.write.write_text(json.dumps(current, indent=1, sort_keys=True, default=repr) + "\n")
        print(f"wrote {args.write}: {', '.join(f'{v} ({len(r)})' for v, r in current.items())}")
        return 0
    before = json.loads(args.compare.read_text())
    # Through JSON, as the snapshot on disk went, so tuples and lists compare alike.
    lines = compare(before, json.loads(json.dumps(current, sort_keys=True, default=repr)))
    print("\n".join(lines))
    identical = all(line.endswith("identical") for line in lines)
    print("every rendered input is identical" if identical else "the rendered inputs differ")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
