"""How the installer reports: progress on stderr, failures as a BuildError naming the binary and the step."""

from __future__ import annotations

import sys


class BuildError(Exception):
    def __init__(self, binary: str, step: str, detail: str) -> None:
        super().__init__(f"{binary}: {step} failed: {detail}")
        self.binary = binary
        self.step = step
        self.detail = detail


def log(msg: str) -> None:
    print(f"pulumi-toolchain: {msg}", file=sys.stderr, flush=True)
