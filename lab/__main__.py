"""`python3 -m lab {build,up,down,status,cluster-up,cluster-down,cluster-status}` - see lab/README.md."""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import cluster, controller, image


def _build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    path = image.ensure_image()
    manifest = json.loads((path / "manifest.json").read_text())
    print(
        f"image {path} ({manifest['size_bytes'] / 2**20:.0f} MiB, built {manifest['built_at']}, "
        f"build timings {manifest['timings']}); this check took {time.monotonic() - started:.1f}s"
    )
    if args.prune:
        running = (controller.status().get("running_image"), cluster.status().get("running_image"))
        in_use = {str(used) for used in running if used} - {str(path)}
        if len(in_use) > 1:  # prune_images spares one image in use; both labs run old ones
            print(f"not pruning: the lab and the cluster run older images {sorted(in_use)}")
            return 0
        state_image = in_use.pop() if in_use else None
        for old in image.prune_images(path, None if state_image is None else type(path)(state_image)):
            print(f"removed old image {old}")
    return 0


def _up(args: argparse.Namespace) -> int:
    controller.boot(timeout=args.timeout)
    print(controller.connection_path())
    return 0


def _down(args: argparse.Namespace) -> int:
    outcome = controller.shutdown(timeout=args.timeout)
    print(f"lab: {outcome}")
    return 0


def _status(args: argparse.Namespace) -> int:
    info = controller.status()
    print(json.dumps(info, indent=2))
    return 0 if info["up"] else 3  # like `systemctl status` for a stopped unit


def _cluster_up(args: argparse.Namespace) -> int:
    cluster.boot(timeout=args.timeout)
    print(cluster.connection_path())
    return 0


def _cluster_down(args: argparse.Namespace) -> int:
    print(f"cluster: {cluster.shutdown(timeout=args.timeout)}")
    return 0


def _cluster_status(args: argparse.Namespace) -> int:
    info = cluster.status()
    print(json.dumps(info, indent=2))
    return 0 if info["up"] else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lab", description="The glance-pulumi lab controller.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the controller image if this machine has none (cached)")
    build.add_argument("--prune", action="store_true", help="also delete images of older recipes")
    build.set_defaults(func=_build)
    up = sub.add_parser("up", help="boot the lab (building the image if needed) and wait until it is usable")
    up.add_argument("--timeout", type=float, default=controller.BOOT_TIMEOUT)
    up.set_defaults(func=_up)
    down = sub.add_parser("down", help="stop the lab if one is up")
    down.add_argument("--timeout", type=float, default=controller.STOP_TIMEOUT, help="seconds before SIGKILL")
    down.set_defaults(func=_down)
    stat = sub.add_parser("status", help="show whether a lab is up and how it is doing")
    stat.set_defaults(func=_status)
    c_up = sub.add_parser("cluster-up", help="boot the two-controller lab (own network) and wait until usable")
    c_up.add_argument("--timeout", type=float, default=cluster.BOOT_TIMEOUT)
    c_up.set_defaults(func=_cluster_up)
    c_down = sub.add_parser("cluster-down", help="stop the two-controller lab and remove its network")
    c_down.add_argument("--timeout", type=float, default=cluster.STOP_TIMEOUT, help="seconds before SIGKILL")
    c_down.set_defaults(func=_cluster_down)
    c_stat = sub.add_parser("cluster-status", help="show whether the two-controller lab is up")
    c_stat.set_defaults(func=_cluster_status)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except controller.LabError as error:
        print(f"lab: error: {error}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
