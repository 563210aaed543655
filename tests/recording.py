"""Run the real program once under Pulumi's mocks (lab.standin.program), recording every registration
request.

The recording keeps what the mocks API hides: parents, dependencies, protect,
additional_secret_outputs and which input properties travel as secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks, rpc

from lab.standin import program
from lab.standin.program import SECRET_SIG, SECRET_VALUE


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    secret_inputs: set[str]
    dependencies: list[str]
    protect: bool
    additional_secret_outputs: list[str]
    provider: str
    # Each alias: {"urn": ...}, or its spec ({"name", "type", "parentUrn", "noParent"}, unset fields left out).
    aliases: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Deployment:
    registrations: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def named(self, name: str) -> Registration:
        matches = [r for r in self.registrations if r.name == name]
        assert len(matches) == 1, f"expected one resource named {name}, found {len(matches)}"
        return matches[0]

    def depends_on(self, name: str, other: str) -> bool:
        """True when `name` waits for `other` (directly, or through the components it depends on)."""
        target = self.named(other).urn
        seen: set[str] = set()
        pending = list(self.named(name).dependencies)
        by_urn = {r.urn: r for r in self.registrations}
        while pending:
            urn = pending.pop()
            if urn == target:
                return True
            if urn in seen or urn not in by_urn:
                continue
            seen.add(urn)
            pending.extend(by_urn[urn].dependencies)
        return False


def _secret_fields(struct: struct_pb2.Struct) -> set[str]:
    def is_secret(value: struct_pb2.Value) -> bool:
        fields = value.struct_value.fields if value.HasField("struct_value") else {}
        return SECRET_SIG in fields and fields[SECRET_SIG].string_value == SECRET_VALUE

    return {key for key, value in struct.fields.items() if is_secret(value)}


def _alias(alias: Any) -> dict[str, Any]:
    if alias.HasField("spec"):
        spec = alias.spec
        fields = {"name": spec.name, "type": spec.type, "parentUrn": spec.parentUrn, "noParent": spec.noParent}
        return {key: value for key, value in fields.items() if value}
    return {"urn": alias.urn}


class RecordingMonitor(mocks.MockMonitor):
    def __init__(self, resources: pulumi.runtime.Mocks, deployment: Deployment) -> None:
        super().__init__(resources)
        self.deployment = deployment

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.deployment.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    custom=request.custom,
                    inputs=rpc.deserialize_properties(request.object),
                    secret_inputs=_secret_fields(request.object),
                    dependencies=list(request.dependencies),
                    protect=request.protect,
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    provider=request.provider,
                    aliases=[_alias(alias) for alias in request.aliases],
                )
            )
        return response


def run_program(
    config: Mapping[str, Any],
    resources: pulumi.runtime.Mocks,
    deployment: Deployment | None = None,
    main: Path = program.ROOT / "__main__.py",
) -> Deployment:
    """lab.standin.program.run_program, recording into `deployment` (kept when the program fails)."""
    deployment = Deployment() if deployment is None else deployment
    monitor = RecordingMonitor(resources, deployment)
    deployment.outputs.update(program.run_program(config, resources, monitor, main))
    return deployment
