"""Go builds from modules through the configured Go module proxy, and the pulumi CLI built that way."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import BuildError, log

PULUMI_PKG = "github.com/pulumi/pulumi/pkg/v3"
PULUMI_SDK = "github.com/pulumi/pulumi/sdk/v3"
VERSION_VAR = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"

PROXY_REFUSED = "\n(the Go module proxy refused this module version: it does not serve it)"


class Go:
    def __init__(self, work: Path) -> None:
        go = shutil.which("go")
        if not go:
            raise BuildError("go", "find the go command", "'go' is not on PATH (Go 1.24 or newer is needed)")
        self.go = go
        self.work = work
        self.parallel = os.environ.get("GLANCE_PULUMI_GO_PARALLEL", "2")
        # GOPROXY, GOMODCACHE and GOCACHE are left as configured (their default places).
        self.env = dict(os.environ, CGO_ENABLED="0", GO111MODULE="on")
        self.env["GOWORK"] = "off"

    def run(
        self,
        binary: str,
        step: str,
        args: list[str],
        cwd: Path,
        log_name: str,
        extra_env: dict[str, str] | None = None,
    ) -> str:
        logfile = self.work / "logs" / f"{log_name}.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        env = dict(self.env, **(extra_env or {}))
        proc = subprocess.run([self.go, *args], cwd=cwd, env=env, capture_output=True, text=True)
        with logfile.open("a") as fh:
            fh.write(f"$ (cd {cwd} && go {' '.join(args)})\n{redact(proc.stderr)}{redact(proc.stdout)}")
        if proc.returncode != 0:
            detail = "\n".join(redact(proc.stderr + proc.stdout).splitlines()[-25:])
            if "403 Forbidden" in detail or "not available" in detail:
                detail += PROXY_REFUSED
            raise BuildError(
                binary, step, f"go {' '.join(args[:3])} ... exited {proc.returncode}; log {logfile}:\n{detail}"
            )
        return proc.stdout

    def download(self, binary: str, module: str, version: str) -> dict[str, Any]:
        out = self.run(
            binary,
            f"download module {module}@{version}",
            ["mod", "download", "-json", f"{module}@{version}"],
            self.work,
            f"{binary}-download",
        )
        info: dict[str, Any] = json.loads(out)
        if info.get("Error"):
            detail = redact(str(info["Error"]))
            if "403" in detail or "not available" in detail:
                detail += PROXY_REFUSED
            raise BuildError(binary, f"download module {module}@{version}", detail)
        return info

    def build(self, binary: str, cwd: Path, package: str, output: Path, ldflags: str, tags: str = "") -> None:
        args = ["build", "-p", self.parallel, "-trimpath", "-buildvcs=false", "-ldflags", f"-s -w {ldflags}".strip()]
        if tags:
            args += ["-tags", tags]
        args += ["-o", str(output), package]
        self.run(binary, f"go build {package}", args, cwd, f"{binary}-build")

    def build_in_wrapper(
        self,
        binary: str,
        wrapper: str,
        requires: dict[str, str],
        replaces: list[tuple[str, str, str]],
        get: str,
        package: str,
        output: Path,
        ldflags: str,
        tags: str = "",
    ) -> None:
        """`go get` then `go build` of `package` in work/WRAPPER, a module that requires `requires`
        (a legacy wrapper is the same module as its namesake, in a directory of its own)."""
        directory = self.work / wrapper
        directory.mkdir(parents=True, exist_ok=True)
        module = "glance-pulumi.invalid/toolchain/" + wrapper.removesuffix("-legacy")
        (directory / "go.mod").write_text(wrapper_gomod(module, requires, replaces))
        self.run(binary, "resolve dependencies", ["get", get], directory, f"{binary}-get")
        self.build(binary, directory, package, output, ldflags, tags)


def redact(text: str) -> str:
    """Keep registry host names out of logs and messages."""
    return re.sub(r"https?://[^/\s]+", "<module proxy>", text)


def pseudo_from_info(info_file: str, major: int) -> str | None:
    try:
        info = json.loads(Path(info_file).read_text())
        commit = info["Origin"]["Hash"]
        when = datetime.datetime.fromisoformat(info["Time"].replace("Z", "+00:00")).astimezone(datetime.UTC)
    except (OSError, KeyError, TypeError, ValueError):
        return None
    prefix = f"v{major}.0.0" if major >= 2 else "v0.0.0"
    return f"{prefix}-{when:%Y%m%d%H%M%S}-{commit[:12]}"


def parse_replaces(gomod: str) -> list[tuple[str, str, str]]:
    """(old path, new path, new version or '') for every replace directive."""
    lines: list[str] = []
    in_block = False
    for raw in gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if in_block:
            if line == ")":
                in_block = False
            elif line:
                lines.append(line)
        elif line.startswith("replace ("):
            in_block = True
        elif line.startswith("replace "):
            lines.append(line[len("replace ") :])
    result = []
    for line in lines:
        left, _, right = line.partition("=>")
        old = left.split()[0]
        new = right.split()
        result.append((old, new[0], new[1] if len(new) > 1 else ""))
    return result


def wrapper_gomod(module: str, requires: dict[str, str], replaces: list[tuple[str, str, str]]) -> str:
    text = f"module {module}\n\ngo 1.24\n\nrequire (\n"
    text += "".join(f"\t{path} {version}\n" for path, version in requires.items())
    text += ")\n"
    for old, new, version in replaces:
        text += f"\nreplace {old} => {new} {version}\n"
    return text


def remote_replaces(gomod_file: str) -> list[tuple[str, str, str]]:
    """Replace directives of a downloaded go.mod that point at another module version (not a directory)."""
    return [r for r in parse_replaces(Path(gomod_file).read_text()) if r[2]]


@contextlib.contextmanager
def timed(binary: str) -> Iterator[None]:
    log(f"{binary}: starting")
    start = time.monotonic()
    yield
    log(f"{binary}: done in {time.monotonic() - start:.0f}s")


def build_cli(go: Go, version: str, bindir: Path) -> dict[str, Any]:
    binary = "pulumi"
    with timed(binary):
        info = go.download(binary, PULUMI_PKG, f"v{version}")
        go.build_in_wrapper(
            binary,
            "cli",
            {PULUMI_PKG: f"v{version}", PULUMI_SDK: f"v{version}"},
            remote_replaces(info["GoMod"]),
            get=f"{PULUMI_PKG}/cmd/pulumi@v{version}",
            package=f"{PULUMI_PKG}/cmd/pulumi",
            output=bindir / "pulumi",
            ldflags=f"-X {VERSION_VAR}=v{version}",
            tags="osusergo,grpcnotrace",
        )
    return {"module": f"{PULUMI_PKG}@v{version}", "info": info.get("Info", "")}
