"""The lab stacks: stack config that points the program at the running lab controller.

`write_stack` creates (or refreshes) `stacks/Pulumi.<name>.yaml` in a project directory:
plain settings written directly, credentials through `pulumi config set --secret` on
standard input, so no secret ever appears on a command line. The files are generated
per lab boot (new SSH key, new passwords) and are not committed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .paths import PORTS, cache_root

REPO = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("Pulumi.yaml", "__main__.py", "components", "policy", "requirements.txt")

TEST_IMAGE_SIZE = "16M"

COMMON: dict[str, Any] = {
    "glance:profile": "debian",
    "glance:sshUser": "root",
    # What the policy pack's rules see: a throwaway lab, not production.
    "glance:environment": "lab",
    # The lab is disposable: let destroy remove the database and the image store.
    "glance:protectData": False,
}

LAB_STACKS: dict[str, dict[str, Any]] = {
    "lab-mariadb": {"glance:dbEngine": "mysql", "glance:dbPort": PORTS["mysql"]},
    "lab-postgres": {
        "glance:dbEngine": "postgresql",
        "glance:dbPort": PORTS["postgresql"],
        "glance:pgHbaMethod": "md5",
        # The RHEL notes' oslo_limit, with a count limit small enough to test refusal.
        "glance:keystoneLimits": True,
        "glance:imageCountTotal": 1,
    },
    # Stacks/Pulumi.debian-swift.yaml on the lab: the lab's Swift as the default store, made
    # in the glance user's account, and the file store beside it.
    "lab-swift": {
        "glance:dbEngine": "mysql",
        "glance:dbPort": PORTS["mysql"],
        "glance:stores": [
            {"id": "local", "type": "file", "path": "/var/lib/glance/images", "description": "Local disk"},
            {"id": "objects", "type": "swift", "container": "glance", "createContainer": True},
        ],
        "glance:defaultStore": "objects",
    },
}


# Stacks for the two-controller lab (lab.cluster): Glance on both controllers behind the
# lab's HAProxy, Swift (on the first) as the only store. The hosts and the load balancer's
# URL come from the cluster's connection settings.
CLUSTER_STACKS: dict[str, dict[str, Any]] = {
    "lab-two-hosts": {
        "glance:dbEngine": "mysql",
        "glance:dbPort": PORTS["mysql"],
        "glance:stores": [{"id": "objects", "type": "swift", "container": "glance", "createContainer": True}],
        "glance:defaultStore": "objects",
    },
}


# Stacks whose TLS material the tests make per run (a throwaway CA), set after write_stack:
# lab-mariadb with Glance served over https by each API host (tests/e2e/test_tls.py).
TLS_STACKS: dict[str, dict[str, Any]] = {"lab-tls": LAB_STACKS["lab-mariadb"]}


def stack_definition(name: str) -> dict[str, Any]:
    """A lab stack's fixed keys, single-controller, cluster or TLS."""
    return {**LAB_STACKS, **CLUSTER_STACKS, **TLS_STACKS}[name]


@dataclass(frozen=True)
class PulumiCli:
    """How to run the Pulumi CLI: argv prefix, working directory and environment."""

    argv: Sequence[str]
    cwd: Path
    env: Mapping[str, str]

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.argv, *args],
            cwd=self.cwd,
            env={**os.environ, **self.env},
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            timeout=600,
        )


def copy_program(source: Path, project: Path) -> None:
    """The program's files (PROJECT_FILES) from `source` into `project`."""
    for name in PROJECT_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source / name, project / name)


def scratch_project(project: Path, state: Path) -> PulumiCli:
    """The real CLI (scripts/pulumi) on a copy of the project in `project`, with its own file
    state backend in `state` and a fresh passphrase: runs that leave the checkout alone."""
    copy_program(REPO, project)
    (project / "stacks").mkdir()
    (project / "venv").symlink_to(REPO / "venv")
    env = {"PULUMI_BACKEND_URL": state.as_uri(), "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(24)}
    return PulumiCli(argv=[str(REPO / "scripts" / "pulumi"), "--non-interactive"], cwd=project, env=env)


def lab_image_file(path: Path | None = None) -> Path:
    """A real qcow2 for the image step: these machines cannot download CirrOS."""
    path = path or cache_root() / "cirros-lab.qcow2"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(partial), TEST_IMAGE_SIZE], check=True, timeout=60
        )
        partial.rename(path)
    return path


def plain_config(name: str, connection: Mapping[str, Any], image: Path) -> dict[str, Any]:
    engine = stack_definition(name)["glance:dbEngine"]
    database = connection["mysql"] if engine == "mysql" else connection["postgresql"]
    keystone = connection["keystone"]
    config = {
        **COMMON,
        # The controller as the lab reaches it: loopback (host networking), or the cluster's first.
        "glance:controllerHost": connection["ssh"]["host"],
        "glance:sshPort": connection["ssh"]["port"],
        "glance:memcachedServers": [connection["memcached"]],
        **stack_definition(name),
        "glance:dbAdminUser": database["admin_user"],
        "glance:keystoneApiUrl": keystone["auth_url"],
        "glance:keystoneAdminUser": keystone["admin_user"],
        "glance:keystoneAdminProject": keystone["admin_project"],
        "glance:region": keystone["region"],
        "glance:cirrosSource": str(image),
    }
    if engine == "postgresql":
        config["glance:pgHbaPath"] = connection["postgresql"]["hba_path"]
    ssh_hosts = [connection["ssh"]["host"]]
    if name in CLUSTER_STACKS:
        ssh_hosts = config["glance:apiHosts"] = [host["address"] for host in connection["hosts"]]
        config["glance:publicUrl"] = connection["load_balancer"]["url"]
    # The lab's real host key, pinned on every host the stack logs in to (the database's is the first's).
    config["glance:sshHostKeys"] = [f"{host} {connection['ssh']['host_key']}" for host in ssh_hosts]
    return config


def secret_config(name: str, connection: Mapping[str, Any]) -> dict[str, str]:
    engine = stack_definition(name)["glance:dbEngine"]
    database = connection["mysql"] if engine == "mysql" else connection["postgresql"]
    return {
        "glance:sshPrivateKey": Path(connection["ssh"]["private_key_path"]).read_text(),
        "glance:dbAdminPassword": database["admin_password"],
        "glance:keystoneAdminPassword": connection["keystone"]["admin_password"],
    }


def program_config(name: str, connection: Mapping[str, Any], image: Path) -> dict[str, Any]:
    """Lab stack `name`'s whole config as the program reads it: keys without the namespace,
    credentials included (for running the program under the stand-in, lab/standin/)."""
    config = {**plain_config(name, connection, image), **secret_config(name, connection)}
    return {key.removeprefix("glance:"): value for key, value in config.items()}


def missing_plugins() -> list[str]:
    """The official plugins the installed toolchain lacks (scripts/pulumi-toolchain --check)."""
    toolchain = subprocess.run(
        [str(REPO / "scripts" / "pulumi-toolchain"), "--check"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return list(json.loads((Path(toolchain) / "manifest.json").read_text()).get("missing", []))


def write_stack(
    name: str,
    pulumi: PulumiCli,
    connection: Mapping[str, Any],
    image: Path,
    secrets: Mapping[str, str] | None = None,
    like: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Select (creating if needed) stack `name` and write its lab config (that of lab stack
    `like`, default `name`, with the plain keys of `overrides` over it), plus any further
    `secrets` (key -> value, set with --secret); returns the file."""
    template = like or name
    pulumi.run("stack", "select", "--create", "--secrets-provider", "passphrase", name)
    stack_file = pulumi.cwd / "stacks" / f"Pulumi.{name}.yaml"
    salt = re.search(r"^encryptionsalt:\s*(\S+)", stack_file.read_text(), re.MULTILINE)
    document: dict[str, Any] = {"encryptionsalt": salt.group(1)} if salt else {}
    # JSON is YAML: a generated file needs no YAML library.
    document["config"] = {**plain_config(template, connection, image), **(overrides or {})}
    stack_file.write_text(json.dumps(document, indent=2) + "\n")
    for key, value in {**secret_config(template, connection), **(secrets or {})}.items():
        pulumi.run("config", "set", "--secret", "--stack", name, key, stdin=value)
    return stack_file
