"""`python3 -m guest COMMAND` inside a lab container (PYTHONPATH=render.GUEST_PATH).

configure [SERVICE...] [--plan FILE] [--secrets FILE | --keep-secrets]
swift-rings | check-xattrs DIR | register-swift | check-swift | check-rabbitmq   (with --secrets)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from . import bootstrap
from .render import IMAGE_PLAN, NodePlan, configure, read_secrets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m guest")
    parser.add_argument("command")
    parser.add_argument("arguments", nargs="*", help="configure: the services (default: all); check-xattrs: DIR")
    parser.add_argument("--plan", type=Path, default=Path(IMAGE_PLAN), help="the node's plan (JSON)")
    parser.add_argument("--secrets", type=Path, help="the build's secrets file (KEY=value lines)")
    parser.add_argument("--keep-secrets", action="store_true", help="take secrets from the installed files")
    args = parser.parse_args(argv)
    plan = NodePlan.from_json(args.plan.read_text())
    secrets = read_secrets(args.secrets) if args.secrets else {}
    if args.command == "configure":
        for path in configure(plan, tuple(args.arguments), secrets, args.keep_secrets):
            print(f"configured {path}")
        return 0
    steps: dict[str, Callable[[], object]] = {
        "swift-rings": lambda: bootstrap.build_swift_rings(plan),
        "check-xattrs": lambda: bootstrap.check_xattrs(Path(args.arguments[0])),
        "register-swift": lambda: bootstrap.register_swift(plan, secrets),
        "check-swift": lambda: print(f"swift: token accepted for {bootstrap.check_swift(plan, secrets)}"),
        "check-rabbitmq": lambda: bootstrap.check_rabbitmq(plan, secrets),
    }
    if args.command not in steps:
        parser.error(f"unknown command {args.command!r}; have configure, {', '.join(steps)}")
    steps[args.command]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
