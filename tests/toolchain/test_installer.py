"""scripts/pulumi-toolchain builds, completes and keeps a toolchain: run for real through its launcher,
with a fake `go` and a fake `pulumi` CLI (what the fake go "builds") in temporary directories.

Nothing here touches the real cache (/var/cache/glance-pulumi) or the Go module proxy: GLANCE_PULUMI_CACHE,
GLANCE_PULUMI_PLUGIN_DIR and GLANCE_PULUMI_REQUIREMENTS all point into tmp_path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tools.pulumi_toolchain.versions import LEGACY_LANGUAGE_HOST_SDK, cache_key, goarch

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "scripts" / "pulumi-toolchain"
PULUMI_VERSION = "3.259.0"
PLUGINS = {"random": "4.21.1"}
REQUIREMENTS = f"pulumi=={PULUMI_VERSION}\npulumi-random=={PLUGINS['random']}\npulumi-policy==1.21.0\n"
OFFICIAL_HOST = b"#!/bin/sh\n# the operator's official pulumi-language-python\n"
HOST_MODULE = "github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3"
LEGACY_HOST_PKG = "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"

# `go mod download -json`, `go get` and `go build -o OUT PACKAGE`, as the installer calls them. Every call
# is logged; FAKE_GO_HOST_MODULE=absent makes the language host module unavailable, as the proxy answers.
FAKE_GO = """\
import json, os, pathlib, sys

args = sys.argv[1:]
state = pathlib.Path(os.environ["FAKE_GO_STATE"])
with (state / "calls.log").open("a") as log:
    log.write(" ".join(args) + "\\n")
if args[:3] == ["mod", "download", "-json"]:
    module, version = args[3].rsplit("@", 1)
    if module == HOST_MODULE and os.environ.get("FAKE_GO_HOST_MODULE") == "absent":
        sys.exit("go: " + args[3] + ": reading the proxy: 403 Forbidden")
    directory = state / "mod" / module.replace("/", "!") / version
    (directory / "python" / "cmd").mkdir(parents=True, exist_ok=True)
    (directory / "python" / "dist").mkdir(exist_ok=True)
    (directory / "python" / "cmd" / "pulumi-language-python-exec").write_text("#!/bin/sh\\n")
    (directory / "python" / "dist" / "pulumi-resource-pulumi-python").write_text("#!/bin/sh\\n")
    info = directory / "info.json"
    info.write_text(json.dumps({"Origin": {"Hash": "0123456789abcdef0123"}, "Time": "2025-01-02T03:04:05Z"}))
    gomod = directory / "go.mod"
    gomod.write_text("module " + module + "\\n")
    found = {"Path": module, "Version": version, "Info": str(info), "GoMod": str(gomod), "Dir": str(directory)}
    print(json.dumps(found))
elif args[0] == "get":
    pass
elif args[0] == "build":
    output, package = pathlib.Path(args[args.index("-o") + 1]), args[-1]
    version = args[args.index("-ldflags") + 1].rsplit("=", 1)[1]
    if package.endswith("/cmd/pulumi"):
        output.write_text((state / "fake-pulumi").read_text().replace("@VERSION@", version))
    else:
        output.write_text("#!/bin/sh\\n# built from " + package + "\\n")
    output.chmod(0o755)
else:
    sys.exit("fake go: unexpected " + " ".join(args))
"""

# `pulumi version`, `pulumi plugin ls --json` and `pulumi plugin install resource NAME VERSION --file F`.
FAKE_PULUMI = """\
import json, os, pathlib, sys

args = sys.argv[1:]
plugins = pathlib.Path(os.environ["PULUMI_HOME"]) / "plugins"
if args == ["version"]:
    print("@VERSION@")
elif args[:3] == ["plugin", "ls", "--json"]:
    found = [json.loads(p.read_text()) for p in sorted(plugins.glob("*.json"))]
    print(json.dumps(found))
elif args[:3] == ["plugin", "install", "resource"]:
    plugins.mkdir(parents=True, exist_ok=True)
    entry = {"kind": "resource", "name": args[3], "version": args[4]}
    (plugins / (args[3] + ".json")).write_text(json.dumps(entry))
else:
    sys.exit("fake pulumi: unexpected " + " ".join(args))
"""


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)


@dataclass
class Machine:
    """A machine with a fake Go, an operator's plugin directory and an empty toolchain cache."""

    tmp: Path
    env: dict[str, str]

    @property
    def toolchain(self) -> Path:
        return self.tmp / "cache" / "toolchain" / cache_key(PULUMI_VERSION, PLUGINS)

    @property
    def host(self) -> Path:
        return self.toolchain / "bin" / "pulumi-language-python"

    def supply_official_host(self) -> Path:
        path = self.tmp / "official" / f"pulumi-language-python-v{PULUMI_VERSION}"
        path.write_bytes(OFFICIAL_HOST)
        path.chmod(0o755)
        return path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(INSTALLER), *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def install(self) -> subprocess.CompletedProcess[str]:
        proc = self.run()
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == f"{self.toolchain}\n"
        return proc

    def go_calls(self) -> list[str]:
        log = self.tmp / "go" / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def built(self) -> list[str]:
        """The packages the fake go built."""
        return [call.split()[-1] for call in self.go_calls() if call.startswith("build ")]

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.toolchain / "manifest.json").read_text())
        return data


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Machine:
    fakebin, state, official = tmp_path / "fakebin", tmp_path / "go", tmp_path / "official"
    for directory in (fakebin, state, official):
        directory.mkdir()
    _script(fakebin / "go", f"HOST_MODULE = {HOST_MODULE!r}\n{FAKE_GO}")
    (state / "fake-pulumi").write_text(f"#!{sys.executable}\n{FAKE_PULUMI}")
    for name, version in PLUGINS.items():
        (official / f"pulumi-resource-{name}-v{version}").write_text("an official plugin\n")
    (tmp_path / "requirements.txt").write_text(REQUIREMENTS)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GLANCE_PULUMI_", "FAKE_GO_"))}
    env.update(
        PATH=f"{fakebin}{os.pathsep}{os.environ['PATH']}",
        GLANCE_PULUMI_CACHE=str(tmp_path / "cache"),
        GLANCE_PULUMI_PLUGIN_DIR=str(official),
        GLANCE_PULUMI_REQUIREMENTS=str(tmp_path / "requirements.txt"),
        GLANCE_PULUMI_NO_SYSTEM="1",
        FAKE_GO_STATE=str(state),
    )
    return Machine(tmp_path, env)


@pytest.mark.parametrize("host_module", ["served", "absent"])
def test_operator_supplied_language_host_survives_a_second_run(machine: Machine, host_module: str) -> None:
    """The official host from GLANCE_PULUMI_PLUGIN_DIR is the one installed: no host is built over it,
    whether or not the proxy serves the host module, and a second run finds nothing to redo."""
    machine.env["FAKE_GO_HOST_MODULE"] = host_module
    official = machine.supply_official_host()

    machine.install()
    assert machine.host.read_bytes() == OFFICIAL_HOST
    assert machine.built() == ["github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"]  # the CLI only
    host = machine.manifest()["language_host"]
    assert host == {
        "source": str(official),
        "version": PULUMI_VERSION,
        "helpers": ["pulumi-language-python-exec", "pulumi-resource-pulumi-python"],
    }
    assert machine.manifest()["missing"] == []
    calls = machine.go_calls()

    second = machine.install()
    assert second.stderr == ""  # warm: nothing completed or reinstalled
    assert machine.host.read_bytes() == OFFICIAL_HOST
    assert machine.go_calls() == calls


def test_host_built_from_its_module_without_an_operator_host(machine: Machine) -> None:
    machine.install()
    assert machine.built() == ["github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", HOST_MODULE]
    assert machine.host.read_text() == f"#!/bin/sh\n# built from {HOST_MODULE}\n"
    assert machine.manifest()["language_host"]["version"] == PULUMI_VERSION


def test_legacy_host_then_the_operator_host_completes_the_toolchain(machine: Machine) -> None:
    """Without the host module: the legacy host behind its shim; once the operator supplies the official
    host, the next run puts it in place of both (and keeps the helpers)."""
    machine.env["FAKE_GO_HOST_MODULE"] = "absent"
    machine.install()
    legacy = LEGACY_LANGUAGE_HOST_SDK
    assert machine.built() == ["github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", LEGACY_HOST_PKG]
    assert f"pulumi-language-python-{legacy}" in machine.host.read_text()  # the shim
    assert (machine.toolchain / "bin" / f"pulumi-language-python-{legacy}").exists()
    assert machine.manifest()["language_host"]["version"] == legacy.lstrip("v")
    assert "403 Forbidden" in machine.manifest()["language_host"]["fallback_reason"]

    official = machine.supply_official_host()
    completing = machine.install()
    assert "completing" in completing.stderr
    assert machine.host.read_bytes() == OFFICIAL_HOST
    assert not (machine.toolchain / "bin" / f"pulumi-language-python-{legacy}").exists()
    host = machine.manifest()["language_host"]
    assert (host["source"], host["version"]) == (str(official), PULUMI_VERSION)
    assert host["helpers"] == ["pulumi-language-python-exec", "pulumi-resource-pulumi-python"]
    assert machine.install().stderr == ""


def test_check_builds_nothing(machine: Machine) -> None:
    proc = machine.run("--check")
    assert (proc.returncode, proc.stdout) == (3, "")
    assert "no usable toolchain" in proc.stderr
    assert machine.go_calls() == []
    machine.install()
    assert machine.run("--check").stdout == f"{machine.toolchain}\n"


def test_usage(machine: Machine) -> None:
    proc = machine.run("--bogus")
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", "usage: pulumi-toolchain [--check]\n")


@pytest.mark.skipif((sys.platform, goarch()) != ("linux", "amd64"), reason="the key includes the platform")
def test_cache_key_is_unchanged() -> None:
    """The key names the cached toolchain (which holds the official plugins): it changes only with the
    versions, the recipe revision or the legacy host, never with a refactoring."""
    plugins = {"command": "1.2.1", "mysql": "3.3.0", "openstack": "5.5.1", "postgresql": "3.18.0", "random": "4.21.1"}
    assert cache_key("3.259.0", plugins) == "pulumi-3.259.0-r3-67b00bd97e10"
