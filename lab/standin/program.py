"""Run the real program once under Pulumi's mocks.

`resources` answers each registration: the stand-in executor (executor.py) applies it to the lab, the
unit tests' mocks make up its outputs. A `monitor` may stand between them to see each registration
request (the tests record them: tests/recording.py).
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc, settings

from components.settings import SECRET_KEYS
from components.stores import SECRET_OPTIONS
from lab.stacks import REPO

ROOT = REPO  # where __main__.py is
SECRET_SIG = rpc._special_sig_key
SECRET_VALUE = rpc._special_secret_sig


def plain(value: Any) -> Any:
    """An input as the program set it, with the secret wrappers removed (recursively)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return plain(value["value"])
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def run_program(
    config: Mapping[str, Any],
    resources: pulumi.runtime.Mocks,
    monitor: mocks.MockMonitor | None = None,
    main: Path = ROOT / "__main__.py",
) -> dict[str, Any]:
    """Run `main` (the repository's __main__.py, or a program that composes it) once with `config`
    (keys without namespace; credentials count as set with --secret), `resources` answering each
    registration; returns the stack's outputs."""
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(resources, project="glance", stack="test", preview=False, monitor=monitor)
    raw = {f"glance:{key}": _config_text(value) for key, value in config.items()}
    secrets = SECRET_KEYS & config.keys()
    # As Pulumi does: a key is secret when any value inside it was set with --secret --path.
    if any(isinstance(item, dict) and SECRET_OPTIONS & item.keys() for item in config.get("stores") or []):
        secrets |= {"stores"}
    pulumi.runtime.set_all_config(raw, [f"glance:{key}" for key in secrets])

    exports: dict[str, Any] = {}
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[None]:
        original_export = pulumi.export

        def record_export(name: str, value: Any) -> None:
            exports[name] = value

        pulumi.export = record_export
        try:
            runpy.run_path(str(main), run_name="__main__")
        finally:
            pulumi.export = original_export
        return pulumi.Output.all(**exports).apply(outputs.update)

    program()
    return outputs


def _config_text(value: Any) -> str:
    """Pulumi hands the program every value as text, structured ones as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)
