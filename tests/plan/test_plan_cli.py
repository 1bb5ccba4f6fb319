"""`make plan` end to end: the CLI writes the plan files, or exits 1 with the config problems only."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tools.offline import PROJECT_DIR


def run_plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROJECT_DIR / "tools" / "plan.py"), *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=120,
        check=False,
    )


def test_plan_writes_resources_and_manifests_and_prints_a_summary(tmp_path: Path) -> None:
    started = time.perf_counter()
    result = run_plan("prod", "--out", str(tmp_path))
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    resources = json.loads((tmp_path / "resources.json").read_text())
    assert {"type", "name", "parent", "provider", "inputs"} <= set(resources[0])
    assert any(r["type"] == "aws:eks/cluster:Cluster" for r in resources)
    manifests = sorted(p.name for p in (tmp_path / "manifests").iterdir())
    assert len(manifests) == 97 and all(m.endswith(".yaml") for m in manifests)
    assert any("-nodepool-train-h100-spot" in m for m in manifests)
    out = result.stdout
    assert "aws:eks/cluster:Cluster" in out
    assert "train-h100" in out and "p5.48xlarge" in out and "max GPUs 32 per capacity type  scales to zero" in out
    assert "nodes 1..1  max GPUs 8  always on: 1" in out
    # Per pool: what serves its GPUs, and what one node advertises.
    assert "GPU Operator: 56 x nvidia.com/mig-1g.10gb (MIG all-1g.10gb) per node" in out
    assert "GPU Operator: 8 x nvidia.com/gpu per node" in out
    # Per team: namespace, GPU quota by resource name and flavor, priorities; then quotas against the pools.
    assert (
        "  serving    namespace serving; GPUs (quota + borrowable): nvidia.com/gpu 16 (+16) in a100-80gb, "
        "nvidia.com/mig-1g.10gb 56 (+56) in mig-1g.10gb; priority production-serving" in out
    )
    assert "  h100-80gb              nvidia.com/gpu           promised    32  pools    64  spare 32" in out
    assert "Priority classes: production-serving 1000, training-critical 500, development 100;" in out
    assert "ClusterQueues in cohort ml-platform: ml-platform-spare, research, serving" in out
    assert (
        "ResourceQuotas no-production-serving, team-quota; LimitRange container-defaults; RoleBindings team-edit, "
        "monitoring/team-research-view; NetworkPolicies allow-kuberay-operator, allow-monitoring, "
        "allow-same-namespace, default-deny-ingress; LocalQueue default" in out
    )
    assert "OVERCOMMITTED" not in out
    assert "Platform invariants: 17 hold" in out
    # "a few seconds at most once installed", interpreter start and imports included.
    assert elapsed < 8


def test_bad_stack_file_exits_1_with_every_problem_and_no_traceback(tmp_path: Path) -> None:
    document = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
    pools = document["config"]["ml-platform:gpuPools"]
    pools[1]["gpusPerNode"] = 4
    pools[0]["minNodes"] = 9
    document["config"]["ml-platform:autoscaler"] = "kerpenter"
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    result = run_plan("bad", "--stack-file", str(bad), "--out", str(out))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "ml-platform:gpuPools[1].gpusPerNode: got 4; allowed for a100-40gb on aws: 8 (p4d.24xlarge)" in result.stderr
    assert "ml-platform:gpuPools[0].maxNodes: got 4; must be >= minNodes (9)" in result.stderr
    assert "ml-platform:autoscaler" in result.stderr
    assert not out.exists(), "nothing is written for a bad stack"


def test_unknown_stack_and_invalid_yaml_are_clear_errors(tmp_path: Path) -> None:
    result = run_plan("nosuchstack")
    assert result.returncode == 1 and "stacks: " in result.stderr and "Traceback" not in result.stderr
    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text("config:\n  ml-platform:cluster: [unclosed\n")
    result = run_plan("broken", "--stack-file", str(broken))
    assert result.returncode == 1 and "not valid YAML" in result.stderr and "Traceback" not in result.stderr


def test_plan_files_are_the_same_on_every_run(tmp_path: Path) -> None:
    """Pull-request reviewers diff these files: registration order must not leak into them."""
    from tools.offline import read_stack_file, run_stack
    from tools.plan import write_plan

    outputs = []
    for run in range(2):
        out = tmp_path / str(run)
        write_plan(run_stack(read_stack_file("prod")), out)
        outputs.append({p.relative_to(out): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()})
    assert outputs[0] == outputs[1]


def test_the_readme_and_help_describe_the_actual_output(tmp_path: Path) -> None:
    """The README's sample summary and its resources.json fields are what `make plan` prints and writes."""
    readme = (PROJECT_DIR / "README.md").read_text()
    result = run_plan("prod", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    sample = readme.split("```\nOffline plan of stack 'prod'", 1)[1].split("```", 1)[0].splitlines()
    for line in sample[1:]:
        if line.strip() and not line.strip().startswith(("...", "Wrote ")):
            assert line in result.stdout.splitlines(), line
    fields = (
        "{type, name, urn, parent, provider, protect, retainOnDelete, ignoreChanges, replaceOnChanges, "
        "deleteBeforeReplace, dependencies, inputs}"
    )
    resources = json.loads((tmp_path / "resources.json").read_text())
    assert list(resources[0]) == [f.strip() for f in fields.strip("{}").split(",")]
    assert [r["urn"] for r in resources] == sorted(r["urn"] for r in resources)
    assert fields in readme
    help_text = run_plan("--help").stdout
    assert fields in " ".join(help_text.split()) and ".ml-platform-plan" in help_text
    # the placeholder the README names exists in the plan
    assert "`<ml-prod-cluster.arn>`" in readme and "<ml-prod-cluster.arn>" in (tmp_path / "resources.json").read_text()
