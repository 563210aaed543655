"""The pull-request and environment workflows say what the README promises (actionlint checks syntax)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def workflow(name: str) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True)
    return document


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_preview_runs_per_stack_with_the_policy_pack_and_cancels_superseded_runs() -> None:
    preview = workflow("preview.yml")
    assert "pull_request" in preview["on"]
    assert preview["concurrency"]["cancel-in-progress"] is True
    job = preview["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(vars.GLANCE_STACKS) }}"
    assert 'preview --stack "$STACK" --diff --policy-pack policy' in steps_text(job)
    comment = next(step for step in job["steps"] if "github-script" in step.get("uses", ""))
    assert "updateComment" in comment["with"]["script"] and "createComment" in comment["with"]["script"]


def test_deploy_goes_to_dev_then_production_behind_its_environment() -> None:
    deploy = workflow("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    jobs = deploy["jobs"]
    assert (jobs["dev"]["environment"], jobs["production"]["environment"]) == ("dev", "production")
    assert jobs["production"]["needs"] == "dev"
    for job in jobs.values():
        assert 'scripts/pulumi up --yes --stack "$STACK" --policy-pack policy' in steps_text(job)


def test_destroy_is_manual_confirmed_and_refuses_protected_data() -> None:
    destroy = workflow("destroy.yml")
    assert set(destroy["on"]) == {"workflow_dispatch"}
    assert set(destroy["on"]["workflow_dispatch"]["inputs"]) == {"stack", "confirm"}
    text = steps_text(destroy["jobs"]["destroy"])
    assert text.index('"$STACK" != "$CONFIRM"') < text.index("glance:protectData") < text.index("pulumi destroy")
    assert "--skip-preview" not in text  # destroy's own preview also refuses protected resources
