"""scripts/bench's arithmetic: phases from the guide's marks, resources from engine events, ratios,
the pin change's row; the file names of the older Glance packages it seeds."""

from __future__ import annotations

import json
from pathlib import Path

from lab import bench, security_update


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
    text = bench.report("lab-postgres", 3, "engine", guide, program, [1.5], {"glance-install": [40.0]}, [])
    lines = text.splitlines()
    # fresh/script: 0.75, 0.60, 0.55 -> 0.60; fresh/critical: 1.36, 1.11, 1.03 -> 1.11
    assert lines[-2] == "ratio fresh-deploy/guide-script: 0.60 (median)"
    assert lines[-1] == "ratio fresh-deploy/critical-path: 1.11 (median)"
    assert any(
        line.split()[:3] == ["guide", "script:", "install"] and line.split()[3:] == ["40.0", "50.0", "60.0"]
        for line in lines
    )
    assert any(line.startswith("program: converged preview") and line.split()[-1] == "n/a" for line in lines)


def pin_change_row(text: str) -> list[str]:
    (line,) = [line for line in text.splitlines() if line.startswith(bench.PIN_CHANGE)]
    return line.removeprefix(bench.PIN_CHANGE).split()


def test_pin_change_row_in_the_full_table_and_alone() -> None:
    guide = {name: [1.0] for name in (*bench.GUIDE_PHASES, "total")}
    full = bench.report("lab-postgres", 1, "engine", guide, {"fresh deploy": [2.0]}, [1.0], {}, [61.0, 45.5, 50.25])
    alone = bench.pin_change_report(3, "engine", [61.0, 45.5, 50.25])
    assert pin_change_row(full) == pin_change_row(alone) == ["45.5", "50.2", "61.0"]
    # Alone: the table's header and that row, no ratio lines nor other phases.
    assert not any(line.startswith(("guide script", "program:", "ratio")) for line in alone.splitlines())
    assert security_update.OLD in alone and security_update.NEW in alone


def test_pin_change_unmeasured_says_why() -> None:
    alone = bench.pin_change_report(1, "the stand-in executor", [])
    assert pin_change_row(alone) == ["n/a"]
    assert "needs the real engine with the official plugins" in alone


def test_values_line_up_under_the_header_for_the_longest_label() -> None:
    alone = bench.pin_change_report(1, "engine", [7.0])
    header = next(line for line in alone.splitlines() if line.startswith("phase (seconds)"))
    row = bench.row(bench.PIN_CHANGE, [7.0])
    assert len(row) == len(header) and row.index("7.0") + len("7.0") == header.index("min") + len("min")


def test_older_packages_are_looked_for_under_the_names_apt_get_download_writes() -> None:
    assert security_update.deb_file_name("glance-api", security_update.OLD) == "glance-api_2%3a25.1.0-2+deb12u3_all.deb"
    assert security_update.deb_file_name("python3-glance", "25.1.0-1") == "python3-glance_25.1.0-1_all.deb"
