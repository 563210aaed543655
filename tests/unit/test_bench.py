"""scripts/bench's arithmetic: phases from the guide's marks, resources from engine events, ratios."""

from __future__ import annotations

import json
from pathlib import Path

from lab import bench


def test_phases_end_where_the_next_one_starts() -> None:
    output = "noise\n@@phase database 100.0\nCREATE\n@@phase keystone 101.5\n@@phase install 110.25\n@@phase end 150\n"
    assert bench.phase_seconds(output) == {"database": 1.5, "keystone": 8.75, "install": 39.75}


def test_resource_seconds_run_from_first_step_event_to_outputs(tmp_path: Path) -> None:
    def event(kind: str, name: str, at: int, type_: str = "glance:node:GlanceNode$command:remote:Command") -> str:
        return json.dumps({"timestamp": at, kind: {"metadata": {"urn": f"urn:pulumi:s::p::{type_}::{name}"}}})

    log = tmp_path / "events.jsonl"
    lines = [
        json.dumps({"timestamp": 1, "preludeEvent": {}}),
        event("resourcePreEvent", "glance-lab", 9, "pulumi:pulumi:Stack"),
        event("resourcePreEvent", "glance", 9, "glance:node:GlanceNode"),
        event("resourcePreEvent", "glance-install", 10),
        event("resourcePreEvent", "glance-user", 11),
        event("resOutputsEvent", "glance-user", 12),
        event("resOutputsEvent", "glance-install", 52),
        event("resOutputsEvent", "glance", 53, "glance:node:GlanceNode"),
        event("resOutputsEvent", "glance-lab", 54, "pulumi:pulumi:Stack"),
    ]
    log.write_text("\n".join(lines) + "\n")
    assert bench.resource_seconds(log) == {"glance-install": 42, "glance-user": 1}


def test_report_gives_median_ratios_against_the_script_and_its_critical_path() -> None:
    guide = {name: [1.0, 1.0, 1.0] for name in bench.GUIDE_PHASES}
    guide["install"] = [40.0, 50.0, 60.0]  # critical path: 44, 54, 64
    guide["total"] = [80.0, 100.0, 120.0]
    program = {"fresh deploy": [60.0, 60.0, 66.0], "destroy": [5.0, 6.0, 7.0]}
    text = bench.report("lab-postgres", 3, "engine", guide, program, [1.5], {"glance-install": [40.0]})
    lines = text.splitlines()
    # fresh/script: 0.75, 0.60, 0.55 -> 0.60; fresh/critical: 1.36, 1.11, 1.03 -> 1.11
    assert lines[-2] == "ratio fresh-deploy/guide-script: 0.60 (median)"
    assert lines[-1] == "ratio fresh-deploy/critical-path: 1.11 (median)"
    assert any(
        line.split()[:3] == ["guide", "script:", "install"] and line.split()[3:] == ["40.0", "50.0", "60.0"]
        for line in lines
    )
    assert any(line.startswith("program: converged preview") and line.split()[-1] == "n/a" for line in lines)
