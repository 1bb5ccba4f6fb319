"""Kubeflow Trainer: the pinned chart with JobSet, and the platform's torch-distributed runtime with the field
guide's defaults (memory /dev/shm, GPU toleration, training pools, spot-aware restarts, NCCL debug off)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from components.kueue import FRAMEWORKS
from components.versions import TRAINING_OPERATOR_KUSTOMIZATION, TRAINING_OPERATOR_OVERLAY, TRAINING_OPERATOR_VERSION
from conftest import plan_of, plan_variant

RELEASE = "kubernetes:helm.sh/v3:Release"
RUNTIME = "kubernetes:trainer.kubeflow.org/v1alpha1:ClusterTrainingRuntime"
PROJECT = Path(__file__).resolve().parents[2]


def runtime(stack: str) -> dict[str, Any]:
    [r] = [r for r in plan_of(stack).registrations if r.type == RUNTIME]
    return {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "ClusterTrainingRuntime", **r.inputs}


def test_the_chart_with_jobset_and_without_its_built_in_runtimes() -> None:
    plan = plan_of("prod")
    [release] = [r for r in plan.of_type(RELEASE) if r.inputs["name"] == "kubeflow-trainer"]
    inputs = release.inputs
    assert (inputs["chart"], inputs["version"], inputs["namespace"]) == (
        "oci://ghcr.io/kubeflow/charts/kubeflow-trainer",
        "2.3.0",
        "kubeflow-system",
    )
    values = inputs["values"]
    assert values["runtimes"] == {"defaultEnabled": False}  # ours replaces the built-in torch-distributed
    assert values["manager"]["nodeSelector"]["ml-platform.io/role"] == "system"
    assert values["jobset"]["controller"]["nodeSelector"]["ml-platform.io/role"] == "system"
    [r] = [r for r in plan.registrations if r.type == RUNTIME]
    assert release.urn in r.dependencies  # its CRD and validating webhook first


def test_the_torch_runtime_bakes_in_shm_toleration_pools_restarts_and_quiet_nccl() -> None:
    spec = runtime("prod")["spec"]
    assert spec["mlPolicy"] == {"numNodes": 1, "torch": {}}
    template = spec["template"]["spec"]
    [node] = template["replicatedJobs"]
    assert node["name"] == "node"
    assert node["template"]["metadata"]["labels"] == {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}
    job = node["template"]["spec"]
    pod = job["template"]["spec"]
    [container] = pod["containers"]
    assert container["name"] == "node"  # the Trainer puts resourcesPerNode, the command and the image here
    assert {"name": "NCCL_DEBUG", "value": "WARN"} in container["env"]
    assert container["volumeMounts"] == [
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "team-data", "mountPath": "/mnt/team-data"},  # the team's shared volume, in its namespace
    ]
    assert pod["volumes"] == [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
        {"name": "team-data", "persistentVolumeClaim": {"claimName": "team-data"}},
    ]
    # the team's checkpoint identity and where its checkpoints go
    assert pod["serviceAccountName"] == "checkpoints"
    assert container["envFrom"] == [{"configMapRef": {"name": "checkpoints"}}]
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    # the training pools' model too (prod's are all H100): Kueue can then admit it only on H100 quota
    assert pod["nodeSelector"] == {"ml-platform.io/workload": "training", "ml-platform.io/gpu": "h100-80gb"}
    # a spot interruption fails the node's Job at once, and the whole gang restarts without counting it
    assert pod["restartPolicy"] == "Never" and job["backoffLimit"] == 0
    assert job["podFailurePolicy"]["rules"] == [
        {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]}
    ]
    failure = template["failurePolicy"]
    assert failure["maxRestarts"] == 3
    assert failure["rules"] == [
        {
            "name": "nodeDisrupted",
            "action": "RestartJobSetAndIgnoreMaxRestarts",
            "onJobFailureReasons": ["PodFailurePolicy"],
        }
    ]


def test_without_a_training_pool_the_runtime_selects_no_workload(tmp_path: Path) -> None:
    spec = runtime("local")["spec"]  # the local stack's one pool is a dev pool
    pod = spec["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and pod["tolerations"]


def test_a_users_first_trainjob_needs_only_an_image_a_command_and_gpus(tmp_path: Path) -> None:
    """The TrainJob and the runtime it names, through check.py as a pull request's CI would run it."""
    trainjob = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "first", "namespace": "research"},
        "spec": {
            "runtimeRef": {"name": "torch-distributed"},
            "trainer": {
                "numNodes": 2,
                "command": ["torchrun", "train.py"],
                "resourcesPerNode": {"limits": {"nvidia.com/gpu": 8}},
            },
        },
    }
    manifest = tmp_path / "first.yaml"
    manifest.write_text(yaml.safe_dump_all([trainjob, runtime("dev")]))
    done = subprocess.run(
        [sys.executable, str(PROJECT / "policies" / "check.py"), str(manifest)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_trainer_off(tmp_path: Path) -> None:
    plan = plan_variant(tmp_path, "dev", lambda c: c.update({"ml-platform:trainer": {"enabled": False}}))
    assert not [r for r in plan.of_type(RELEASE) if r.inputs["name"] == "kubeflow-trainer"]
    assert not [r for r in plan.registrations if r.type == RUNTIME]


DIRECTORY = "kubernetes:kustomize/v2:Directory"
REFERENCE_DIR = PROJECT.parent / "shared" / "reference"


def test_the_legacy_training_operator_comes_from_the_tag_its_reference_crd_was_read_at() -> None:
    """../shared/reference/SOURCES.tsv records where the pinned PyTorchJob CRD comes from: the overlay is
    rendered from the same repository and tag."""
    [row] = [
        line.split("\t")
        for line in (REFERENCE_DIR / "SOURCES.tsv").read_text().splitlines()
        if line.startswith("crds/training-operator-")
    ]
    _, repo, tag, _, path, *_ = row
    assert path == "manifests/base/crds/kubeflow.org_pytorchjobs.yaml"  # the base the standalone overlay includes
    assert tag == TRAINING_OPERATOR_VERSION
    overlay = f"https://github.com/{repo}//manifests/overlays/standalone?ref={tag}"
    assert TRAINING_OPERATOR_OVERLAY.format(version=tag) == overlay
    kustomization = yaml.safe_load((PROJECT / TRAINING_OPERATOR_KUSTOMIZATION / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [overlay]


def test_the_legacy_training_operator_runs_pytorchjob_only_on_system_nodes() -> None:
    """The platform's patches on upstream's overlay: one controller, one CRD (Kueue queues PyTorchJobs only)."""
    kustomization = yaml.safe_load((PROJECT / TRAINING_OPERATOR_KUSTOMIZATION / "kustomization.yaml").read_text())
    [deployment, *crds] = kustomization["patches"]
    assert deployment["target"] == {"group": "apps", "version": "v1", "kind": "Deployment", "name": "training-operator"}
    ops = {op["path"]: op["value"] for op in yaml.safe_load(deployment["patch"])}
    assert ops == {
        "/spec/template/spec/containers/0/args": ["--enable-scheme=pytorchjob"],
        "/spec/template/spec/nodeSelector": {"ml-platform.io/role": "system"},
    }
    deleted = set()
    for patch in crds:
        doc = yaml.safe_load(patch["patch"])
        assert doc["$patch"] == "delete" and doc["kind"] == "CustomResourceDefinition"
        deleted.add(doc["metadata"]["name"])
    # every v1 CRD of the overlay except PyTorchJob (manifests/base/crds/kustomization.yaml at the tag)
    kinds = ("tfjobs", "mpijobs", "xgboostjobs", "paddlejobs", "jaxjobs")
    assert deleted == {f"{kind}.kubeflow.org" for kind in kinds}
    assert "kubeflow.org/pytorchjob" in FRAMEWORKS


def test_the_legacy_training_operator_where_enabled_kept_and_protected_in_prod() -> None:
    for stack in ("dev", "prod"):
        plan = plan_of(stack)
        [operator] = plan.of_type(DIRECTORY)
        assert operator.inputs["directory"] == "kustomize/training-operator"
        # deleting its CRDs would delete every PyTorchJob
        assert operator.retain_on_delete and operator.protect == (stack == "prod")
        system_nodes = [r for r in plan.registrations if r.type == "aws:eks/nodeGroup:NodeGroup" and r.name == "system"]
        assert system_nodes and {r.urn for r in system_nodes} <= set(operator.dependencies)  # nodes to run on
    for stack in ("gke", "local"):  # off by default
        assert not plan_of(stack).of_type(DIRECTORY)


def test_the_legacy_training_operator_alone(tmp_path: Path) -> None:
    def only_v1(c: dict[str, Any]) -> None:
        c["ml-platform:trainer"] = {"enabled": False, "trainingOperator": {"enabled": True}}

    plan = plan_variant(tmp_path, "dev", only_v1)
    assert plan.of_type(DIRECTORY)
    assert not [r for r in plan.of_type(RELEASE) if r.inputs["name"] == "kubeflow-trainer"]
    assert not [r for r in plan.registrations if r.type == RUNTIME]


def test_no_model_in_the_runtimes_selector_when_training_pools_differ(tmp_path: Path) -> None:
    def two_models(c: dict[str, Any]) -> None:
        c["ml-platform:gpuPools"].append(
            {
                "name": "train-l4",
                "gpu": "l4",
                "gpusPerNode": 8,
                "capacity": "spot",
                "maxNodes": 1,
                "workload": "training",
            }
        )

    plan = plan_variant(tmp_path, "dev", two_models)
    [r] = [r for r in plan.registrations if r.type == RUNTIME]
    pod = r.inputs["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"ml-platform.io/workload": "training"}


def test_failure_rule_names_pass_jobsets_webhook() -> None:
    """JobSet v0.12.0 validates rule names with this pattern in its webhook (pkg/webhooks/jobset_webhook.go), not in
    its CRD: a name it refuses passes the plan's schema checks and fails every TrainJob at run time."""
    import re

    rules = runtime("prod")["spec"]["template"]["spec"]["failurePolicy"]["rules"]
    assert rules and all(re.fullmatch(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?", r["name"]) for r in rules)


def test_shm_sizes_have_a_floor_and_a_ceiling() -> None:
    from components.config.errors import ConfigError
    from components.config.loading import load_platform_config
    from conftest import raw_config, stack_document

    for section, where in (("ml-platform:trainer", "trainer.shmSize"),):
        for bad, message in (("0", "at least 1Gi"), ("100m", "at least 1Gi"), ("9Ei", "at most 1Ti")):
            document = stack_document("dev")["config"]
            document[section] = {"shmSize": bad}
            try:
                load_platform_config(raw_config(document))
            except ConfigError as error:
                assert f"ml-platform:{where}" in str(error) and message in str(error)
            else:
                raise AssertionError(f"{bad} accepted")
    document = stack_document("dev")["config"]
    document["ml-platform:teams"][0]["rayCluster"]["shmSize"] = "0"
    try:
        load_platform_config(raw_config(document))
    except ConfigError as error:
        assert "ml-platform:teams[0].rayCluster.shmSize" in str(error) and "at least 1Gi" in str(error)
    else:
        raise AssertionError("rayCluster.shmSize 0 accepted")
