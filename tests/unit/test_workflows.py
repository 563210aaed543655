"""The pull-request and environment workflows say what the README promises (actionlint checks syntax)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
MAPPING = "fromJSON(vars.GLANCE_STACK_ENVIRONMENTS)"
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"


def workflow(name: str) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True)
    return document


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def uses_secrets(job: dict[str, Any]) -> bool:
    return "secrets." in yaml.safe_dump(job)


def runs_code(job: dict[str, Any]) -> bool:
    """The job checks out the repository (in preview.yml: the pull request's code)."""
    return any("actions/checkout" in str(step.get("uses", "")) for step in job["steps"])


def environment_of(stack: str) -> str:
    return f"${{{{ {MAPPING}[{stack}] }}}}"


def test_preview_runs_per_stack_with_the_policy_pack_and_cancels_superseded_runs() -> None:
    preview = workflow("preview.yml")
    assert "pull_request" in preview["on"]
    assert preview["concurrency"]["cancel-in-progress"] is True
    job = preview["jobs"]["preview"]
    # The stacks are the mapping's, listed by a job that neither checks out code nor holds a secret.
    assert job["needs"] == "stacks"
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    stacks = preview["jobs"]["stacks"]
    assert "vars.GLANCE_STACK_ENVIRONMENTS" in yaml.safe_dump(stacks)
    assert not runs_code(stacks) and not uses_secrets(stacks) and stacks["permissions"] == {}
    assert 'preview --stack "$STACK" --diff --policy-pack policy' in steps_text(job)
    comment = next(step for step in job["steps"] if "github-script" in step.get("uses", ""))
    assert "updateComment" in comment["with"]["script"] and "createComment" in comment["with"]["script"]


def test_pull_request_code_gets_secrets_only_in_its_stacks_environment() -> None:
    jobs = workflow("preview.yml")["jobs"]
    stack_jobs = {name: job for name, job in jobs.items() if runs_code(job) or uses_secrets(job)}
    assert set(stack_jobs) == {"preview"}
    for job in stack_jobs.values():
        # The secrets are the stack's environment's: production's wait for production's reviewers.
        assert job["environment"] == environment_of("matrix.stack")
        assert "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}" in job["env"].values()
    # Forks get no secrets: no job runs for their pull requests.
    for name, job in jobs.items():
        assert job["if"] == SAME_REPOSITORY, name


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "destroy.yml"])
def test_every_job_with_a_secret_runs_in_an_environment_of_the_mapping(name: str) -> None:
    for job_name, job in workflow(name)["jobs"].items():
        if uses_secrets(job) or runs_code(job):
            assert str(job.get("environment", "")).startswith(f"${{{{ {MAPPING}["), f"{name}: {job_name}"
        else:
            # The jobs without an environment only read the mapping: no code, no secret, no token.
            assert job["permissions"] == {}, f"{name}: {job_name}"


def test_deploy_goes_to_dev_then_production_behind_its_environment() -> None:
    deploy = workflow("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    jobs = deploy["jobs"]
    assert jobs["dev"]["environment"] == environment_of("vars.GLANCE_DEV_STACK")
    assert jobs["production"]["environment"] == environment_of("vars.GLANCE_PROD_STACK")
    assert (jobs["dev"]["needs"], jobs["production"]["needs"]) == ("environments", "dev")
    # A stack without an environment in the mapping is refused before any job holds a secret.
    check = steps_text(jobs["environments"])
    assert '"$DEV_STACK" "$PROD_STACK"' in check and "has no environment in GLANCE_STACK_ENVIRONMENTS" in check
    for job in (jobs["dev"], jobs["production"]):
        assert 'scripts/pulumi up --yes --stack "$STACK" --policy-pack policy' in steps_text(job)


def test_destroy_is_manual_confirmed_and_refuses_protected_data() -> None:
    destroy = workflow("destroy.yml")
    assert set(destroy["on"]) == {"workflow_dispatch"}
    assert set(destroy["on"]["workflow_dispatch"]["inputs"]) == {"stack", "confirm"}
    job = destroy["jobs"]["destroy"]
    # The input stack goes through the same mapping; one without an environment there is refused.
    assert job["environment"] == environment_of("inputs.stack")
    assert job["needs"] == "environment"
    check = destroy["jobs"]["environment"]
    assert check["env"]["STACK"] == "${{ inputs.stack }}" and "has no environment" in steps_text(check)
    text = steps_text(job)
    assert text.index('"$STACK" != "$CONFIRM"') < text.index("glance:protectData") < text.index("pulumi destroy")
    assert "--skip-preview" not in text  # destroy's own preview also refuses protected resources
