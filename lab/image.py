"""Build the lab's controller image once per machine, cached by a hash of its inputs.

Layout under the cache (see paths.cache_root):
    image-<hash>/rootfs/        Debian 12 tree, booted read-only with an overlay
    image-<hash>/secrets.json   generated passwords baked into the image (0600)
    image-<hash>/manifest.json  inputs, timings, size; written last
    image-<hash>/logs/          build logs, kept for post-mortems
    build.lock                  flock: one build at a time per machine

A build happens in `.build-<hash>-<pid>/` on the same filesystem and is renamed into
place, so an `image-<hash>/` directory is always complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import string
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from . import locks, nspawn
from .errors import LabError
from .guest import render
from .paths import MACHINE_NAME, RABBITMQ_USER, cache_root
from .session import write_private
from .topology import HOSTNAME, LAB

# Bump when the build procedure in this file changes in a way that alters the image.
RECIPE_REVISION = "6"
SUITE = "bookworm"
DEBOOTSTRAP_INCLUDE = "systemd,systemd-sysv,dbus,openssh-server,iproute2,python3,procps"
HOST_PACKAGES = ("debootstrap", "systemd-container", "openssh-client", "qemu-utils")
# The executable each host package provides, to tell whether it is installed.
HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-container": "systemd-nspawn",
    "openssh-client": "ssh",
    "qemu-utils": "qemu-img",
}
PROVISION_SCRIPT = Path(__file__).with_name("provision.sh")
GUEST_PACKAGE = Path(render.__file__).parent
MYSQL_ADMIN_USER = "labadmin"
BUILD_TIMEOUT = 1800.0  # seconds for each containerised stage

Log = Callable[[str], None]


def _stderr_log(message: str) -> None:
    print(f"[lab] {message}", file=sys.stderr, flush=True)


# ---- cache key ---------------------------------------------------------------------


def recipe_files() -> dict[str, bytes]:
    """What the build copies into the rootfs, by path there: provision.sh, the guest package
    with the config templates, and the single lab's node plan, which the image is configured
    for (a cluster node renders its own at boot)."""
    guest = Path(render.GUEST_PATH.lstrip("/"))
    files = {"usr/local/sbin/lab-provision": PROVISION_SCRIPT.read_bytes()}
    files.update({str(guest / "guest" / path.name): path.read_bytes() for path in sorted(GUEST_PACKAGE.glob("*.py"))})
    templates = sorted(path for path in render.TEMPLATES.rglob("*") if path.is_file())
    files.update({str(guest / path.relative_to(render.TEMPLATES.parent)): path.read_bytes() for path in templates})
    files[render.IMAGE_PLAN.lstrip("/")] = LAB.node_plan(LAB.primary).to_json().encode()
    return files


def image_inputs() -> dict[str, str]:
    """Everything that determines the image's content (its package list lives in
    provision.sh, so hashing the recipe's files covers the packages too)."""
    digests = {path: hashlib.sha256(content).hexdigest() for path, content in recipe_files().items()}
    return {
        "recipe_revision": RECIPE_REVISION,
        "suite": SUITE,
        "debootstrap_include": DEBOOTSTRAP_INCLUDE,
        "recipe_sha256": hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest(),
        "hostname": HOSTNAME,
    }


def image_hash() -> str:
    blob = json.dumps(image_inputs(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def image_dir() -> Path:
    return cache_root() / f"image-{image_hash()}"


def is_built(path: Path) -> bool:
    return (path / "manifest.json").is_file() and (path / "rootfs").is_dir()


def read_secrets(path: Path | None = None) -> dict[str, str]:
    data: dict[str, str] = json.loads(((path or image_dir()) / "secrets.json").read_text())
    return data


# ---- host prerequisites --------------------------------------------------------------


def missing_host_packages() -> list[str]:
    return [pkg for pkg, tool in HOST_TOOLS.items() if shutil.which(tool) is None]


def ensure_host_prerequisites(log: Log = _stderr_log) -> None:
    """apt-get install what the lab needs on the host, only if something is missing."""
    missing = missing_host_packages()
    if not missing:
        return
    log(f"installing host packages: {' '.join(HOST_PACKAGES)} (missing: {' '.join(missing)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", *HOST_PACKAGES],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


# ---- mirror (read from the host at run time; never written into the repo) -----------


def host_apt_sources() -> tuple[str, str]:
    """(file name, text) of the host's Debian apt sources, copied into the image so the
    container uses exactly the mirror the host uses."""
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.is_file():
        return "debian.sources", deb822.read_text()
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        return "debian.list", legacy.read_text()
    raise LabError("no Debian apt sources on the host (/etc/apt/sources.list[.d])")


def host_mirror() -> str:
    """The URI of the host's main Debian archive (not the security one)."""
    _, text = host_apt_sources()
    uris = re.findall(r"^URIs:\s*(\S+)", text, re.MULTILINE)
    uris += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", text, re.MULTILINE)
    for uri in uris:
        if "security" not in uri:
            return str(uri)
    raise LabError("could not find the Debian mirror in the host's apt sources")


# ---- the build -------------------------------------------------------------------------


def build_lock() -> AbstractContextManager[None]:
    return locks.exclusive("build.lock")


def ensure_image(log: Log = _stderr_log) -> Path:
    """Return the cached image, building it first if this machine has none for the
    current inputs. Safe to call concurrently: builds are serialised by a flock."""
    target = image_dir()
    if is_built(target):
        return target
    with build_lock():
        if is_built(target):  # somebody else built it while we waited
            return target
        ensure_host_prerequisites(log)
        _remove_stale_builds()
        work = cache_root() / f".build-{image_hash()}-{os.getpid()}"
        try:
            _build(work, log)
            os.rename(work, target)
        except BaseException:
            _keep_failed_logs(work, log)
            raise
        finally:
            if work.exists():
                _remove_tree(work)
    log(f"image ready: {target}")
    return target


def _build(work: Path, log: Log) -> None:
    started = time.monotonic()
    rootfs = work / "rootfs"
    logs = work / "logs"
    logs.mkdir(parents=True)
    timings: dict[str, float] = {}

    log(f"debootstrap {SUITE} (minbase) into {rootfs}")
    t = time.monotonic()
    _run_logged(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={DEBOOTSTRAP_INCLUDE}",
            SUITE,
            str(rootfs),
            host_mirror(),
        ],
        logs / "debootstrap.log",
        timeout=BUILD_TIMEOUT,
    )
    timings["debootstrap_s"] = time.monotonic() - t

    _prepare_rootfs(rootfs)
    log("provision stage 1: packages and configuration (container, not booted)")
    t = time.monotonic()
    _run_stage(rootfs, "packages", logs / "stage-packages.log", boot=False)
    timings["packages_s"] = time.monotonic() - t

    creds = _generate_secrets()
    write_private(rootfs / "root/lab-secrets.env", "".join(f"{k}={v}\n" for k, v in creds.items()))
    log("provision stage 2: database accounts, Keystone, Swift and RabbitMQ bootstrap (booted, private network)")
    t = time.monotonic()
    _run_stage(rootfs, "bootstrap", logs / "stage-bootstrap.log", boot=True)
    timings["bootstrap_s"] = time.monotonic() - t
    _check_bootstrap(rootfs, logs)
    (rootfs / "root/lab-secrets.env").unlink(missing_ok=True)
    # journald is persistent in the image: sessions should not start with build logs.
    for journal in (rootfs / "var/log/journal").glob("*"):
        shutil.rmtree(journal, ignore_errors=True)

    write_private(
        work / "secrets.json",
        json.dumps(
            {
                "mysql_admin_user": creds["MYSQL_ADMIN_USER"],
                "mysql_admin_password": creds["MYSQL_ADMIN_PASSWORD"],
                "postgresql_admin_password": creds["PG_ADMIN_PASSWORD"],
                "keystone_admin_password": creds["KEYSTONE_ADMIN_PASSWORD"],
                "keystone_db_password": creds["KEYSTONE_DB_PASSWORD"],
                "swift_service_password": creds["SWIFT_SERVICE_PASSWORD"],
                "rabbitmq_user": creds["RABBITMQ_USER"],
                "rabbitmq_password": creds["RABBITMQ_PASSWORD"],
            },
            indent=2,
        ),
    )
    timings["total_s"] = time.monotonic() - started
    manifest = {
        "hash": image_hash(),
        "inputs": image_inputs(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "size_bytes": _tree_size(rootfs),
        "ssh_host_key": (rootfs / "etc/ssh/ssh_host_ed25519_key.pub").read_text().strip(),
    }
    # Written last: its presence marks a complete image.
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"build took {timings['total_s']:.0f}s: {manifest['timings']}")


def _prepare_rootfs(rootfs: Path) -> None:
    """Host-side edits before the first container run."""
    name, text = host_apt_sources()
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d" / name).write_text(text)
    # debootstrap copies the host's machine-id; give the image its own. It must not be
    # empty, or every session's boot would count as a first boot and re-apply presets.
    (rootfs / "etc/machine-id").write_text(secrets.token_hex(16) + "\n")
    for path, content in recipe_files().items():
        (rootfs / path).parent.mkdir(parents=True, exist_ok=True)
        (rootfs / path).write_bytes(content)
    (rootfs / "usr/local/sbin/lab-provision").chmod(0o755)


def _run_stage(rootfs: Path, stage: str, log_path: Path, boot: bool) -> None:
    """Run one provisioning stage in a container.

    Stage 1 runs the script directly on the host's network (apt needs the mirror).
    Stage 2 boots systemd on a private network: only its own loopback, so a build never
    collides with a running lab's ports; lab-provision.service powers it off at the end.
    """
    cgroup = f"{MACHINE_NAME}-build-{os.getpid()}"
    if boot:
        flags = ["--boot", "--private-network", f"--hostname={HOSTNAME}"]
        argv: list[str] = []
    else:
        flags = ["--resolv-conf=copy-host", "--setenv=DEBIAN_FRONTEND=noninteractive"]
        argv = ["/usr/local/sbin/lab-provision", stage]
    launch = nspawn.Launch(rootfs=rootfs, machine=f"{MACHINE_NAME}-build", cgroup=cgroup, flags=flags, argv=argv)
    proc = nspawn.start(launch, log_path)
    try:
        code = proc.wait(timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise LabError(f"stage {stage} timed out; see {log_path}") from None
    finally:
        nspawn.stop(proc.pid, cgroup, timeout=10, reap=proc)
        nspawn.remove_cgroup(cgroup)
    if code != 0:
        raise LabError(f"stage {stage} failed (exit {code}):\n{nspawn.log_tail(log_path)}")


def _check_bootstrap(rootfs: Path, logs: Path) -> None:
    """Stage 2 runs as a unit inside the container; it reports through files."""
    shutil.copyfile(rootfs / "var/log/lab-provision.log", logs / "provision-bootstrap.log")
    rc_file = rootfs / "var/log/lab-provision.rc"
    rc = rc_file.read_text().strip() if rc_file.exists() else "missing"
    if rc != "0":
        tail = nspawn.log_tail(logs / "provision-bootstrap.log")
        raise LabError(f"bootstrap stage failed (rc {rc}):\n{tail}")


def _generate_secrets() -> dict[str, str]:
    # Alphanumeric only: they end up inside SQL literals, URLs and shell env files.
    def password() -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(secrets.choice(alphabet) for _ in range(24))

    return {
        "MYSQL_ADMIN_USER": MYSQL_ADMIN_USER,
        "MYSQL_ADMIN_PASSWORD": password(),
        "PG_ADMIN_PASSWORD": password(),
        "KEYSTONE_ADMIN_PASSWORD": password(),
        "KEYSTONE_DB_PASSWORD": password(),
        # Keystone user `swift` (project service), which the Swift proxy validates tokens as.
        "SWIFT_SERVICE_PASSWORD": password(),
        # RabbitMQ user (vhost /) that Glance sends its notifications as.
        "RABBITMQ_USER": RABBITMQ_USER,
        "RABBITMQ_PASSWORD": password(),
    }


def _run_logged(argv: list[str], log_path: Path, timeout: float) -> None:
    with open(log_path, "wb") as log:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
    if result.returncode != 0:
        raise LabError(f"{argv[0]} failed (exit {result.returncode}):\n{nspawn.log_tail(log_path)}")


def _keep_failed_logs(work: Path, log: Log) -> None:
    """The build tree is deleted after a failure; its logs are worth keeping."""
    kept = cache_root() / "failed-build-logs"
    shutil.rmtree(kept, ignore_errors=True)
    if (work / "logs").is_dir():
        shutil.copytree(work / "logs", kept)
        provision_log = work / "rootfs/var/log/lab-provision.log"
        if provision_log.is_file():
            shutil.copyfile(provision_log, kept / "provision-bootstrap.log")
        for name in ("keystone", "mysql", "postgresql", "rabbitmq"):
            if (work / "rootfs/var/log" / name).is_dir():
                shutil.copytree(work / "rootfs/var/log" / name, kept / name, dirs_exist_ok=True)
        log(f"build logs kept in {kept}")


# ---- housekeeping --------------------------------------------------------------------


def _tree_size(path: Path) -> int:
    out = subprocess.run(["du", "-sxb", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def _remove_stale_builds() -> None:
    """Half-done builds of processes that died (we hold the lock, so none is running)."""
    for stale in cache_root().glob(".build-*"):
        _remove_tree(stale)


def _remove_tree(path: Path) -> None:
    """rm -rf that first unmounts anything a killed debootstrap left mounted inside."""
    _unmount_below(path)
    shutil.rmtree(path, ignore_errors=True)


def _unmount_below(path: Path) -> None:
    prefix = str(path.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)


def prune_images(keep: Path, in_use: Path | None) -> list[Path]:
    """Delete images of other inputs (old recipes) that no running lab uses."""
    removed = []
    with build_lock():
        for old in cache_root().glob("image-*"):
            if old != keep and old != in_use:
                _remove_tree(old)
                removed.append(old)
    return removed
