"""The README's "submit your first job" examples: each passes the policy checker, validates against its pinned CRD,
and fits the dev plan (the namespace, queue, PriorityClass, pool, runtime, volume and ServiceAccount it names
exist there, and its GPUs fit the team's quota); the README shows each file as it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import plan_of
from schemas import crd_schema_dir, validate_custom_resource
from tools.invariants import PlanView
from vocabulary.labels import GPU_TAINT_KEY, LABEL_TEAM
from vocabulary.queues import QUEUE_LABEL
from vocabulary.resources import is_gpu_resource

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((PROJECT / "examples" / "first-jobs").glob("*.yaml"))
KINDS = {"TrainJob", "PyTorchJob", "RayJob", "InferenceService"}


def load(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]
    match obj["kind"]:
        case "PyTorchJob":
            return [r["template"]["spec"] for r in spec["pytorchReplicaSpecs"].values()]
        case "RayJob":
            cluster = spec["rayClusterSpec"]
            return [g["template"]["spec"] for g in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]]
        case "InferenceService":
            predictor = dict(spec["predictor"])
            predictor["containers"] = [*predictor.get("containers", []), predictor["model"]]
            return [predictor]
    return []  # a TrainJob's pods come from its runtime


def gpu_limits(pod: dict[str, Any]) -> dict[str, int]:
    return {
        k: int(v)
        for c in pod.get("containers", [])
        for k, v in (c.get("resources", {}).get("limits") or {}).items()
        if is_gpu_resource(k)
    }


def named(plan: PlanView, kind: str) -> set[tuple[str | None, str]]:
    return {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in plan.objects(kind)}


def test_there_is_one_example_of_each_kind() -> None:
    assert {load(p)["kind"] for p in EXAMPLES} == KINDS and len(EXAMPLES) == len(KINDS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_passes_the_policy_checker_with_no_findings(path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(PROJECT / "policies" / "check.py"), str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_validates_against_its_pinned_crd(path: Path) -> None:
    if crd_schema_dir() is None:
        pytest.skip("set CRD_SCHEMA_DIR=../shared/reference/crds (make test does)")
    assert validate_custom_resource(load(path)) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_fits_the_dev_platform(path: Path) -> None:
    obj, plan = load(path), PlanView.of(plan_of("dev"))
    namespace = obj["metadata"]["namespace"]
    teams = {
        str(n["metadata"]["name"]): n
        for n in plan.objects("Namespace")
        if LABEL_TEAM in n["metadata"].get("labels", {})
    }
    assert namespace in teams
    [team] = [t for t in plan.config.teams if t.name == namespace]
    # queued jobs land on a planned LocalQueue (the namespace's `default` when the label is left out)
    if obj["kind"] != "InferenceService":
        queue = obj["metadata"].get("labels", {}).get(QUEUE_LABEL, "default")
        assert (namespace, queue) in named(plan, "LocalQueue")
    else:
        assert QUEUE_LABEL not in obj["metadata"].get("labels", {})  # serving is not queued
    if obj["kind"] == "TrainJob":
        assert (None, obj["spec"]["runtimeRef"]["name"]) in named(plan, "ClusterTrainingRuntime")
        priority = obj["metadata"]["labels"]["kueue.x-k8s.io/priority-class"]
        assert (None, priority) in named(plan, "WorkloadPriorityClass")
    if obj["kind"] == "InferenceService":
        release = plan.release("kserve-runtime-configs")
        assert release is not None
        runtimes = release.inputs["values"]["kserve"]["servingruntime"]
        assert runtimes[obj["spec"]["predictor"]["model"]["modelFormat"]["name"] + "server"]["disabled"] is False
    claims, accounts, configs = (named(plan, k) for k in ("PersistentVolumeClaim", "ServiceAccount", "ConfigMap"))
    blocked = {
        q["metadata"]["name"].removeprefix("no-")
        for q in plan.objects("ResourceQuota")
        if q["metadata"]["namespace"] == namespace
    }
    for pod in pod_specs(obj):
        priority = pod["priorityClassName"]
        assert (None, priority) in named(plan, "PriorityClass") and priority not in blocked
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert (namespace, volume["persistentVolumeClaim"]["claimName"]) in claims
        if "serviceAccountName" in pod:
            assert (namespace, pod["serviceAccountName"]) in accounts
        for container in pod["containers"]:
            for ref in container.get("envFrom", []):
                assert (namespace, ref["configMapRef"]["name"]) in configs
        gpus = gpu_limits(pod)
        selector = pod.get("nodeSelector", {})
        if not gpus:
            continue
        # a pool the team may use whose nodes carry every label selected, offer the GPUs, and whose taint is tolerated
        fitting = [
            pool
            for pool in plan.pools
            if team.name in pool.teams
            and any(
                all(pool.node_labels(c, "operator").get(k) == v for k, v in selector.items())
                for c in pool.capacity_types
            )
            and set(gpus) <= set(pool.advertised)
            and all(n <= pool.allocatable_per_node for n in gpus.values())
        ]
        assert fitting, f"{path.name}: no pool of team {team.name} fits {selector} and {gpus}"
        assert any(t["key"] == GPU_TAINT_KEY for t in pod["tolerations"])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_requests_equal_limits(path: Path) -> None:
    """Kueue 0.19.2 counts a container with limits only at the namespace's default requests (kueue#15020)."""
    obj = load(path)
    resources = [c.get("resources", {}) for pod in pod_specs(obj) for c in pod["containers"]]
    if obj["kind"] == "TrainJob":
        resources.append(obj["spec"]["trainer"]["resourcesPerNode"])
    assert resources and all(r.get("requests") == r.get("limits") for r in resources if r.get("limits"))


def replicated(obj: dict[str, Any]) -> list[tuple[int, dict[str, Any], dict[str, str]]]:
    """(how many at most, the resources of one, its node selector) for every kind of pod the object makes."""
    spec = obj["spec"]
    match obj["kind"]:
        case "TrainJob":
            runtime = next(
                o
                for o in PlanView.of(plan_of("dev")).objects("ClusterTrainingRuntime")
                if o["metadata"]["name"] == spec["runtimeRef"]["name"]
            )
            pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
            return [(spec["trainer"]["numNodes"], spec["trainer"]["resourcesPerNode"], pod.get("nodeSelector", {}))]
        case "PyTorchJob":
            return [
                (r["replicas"], c["resources"], r["template"]["spec"].get("nodeSelector", {}))
                for r in spec["pytorchReplicaSpecs"].values()
                for c in r["template"]["spec"]["containers"]
            ]
        case "RayJob":
            cluster = spec["rayClusterSpec"]
            groups = [(1, cluster["headGroupSpec"]), *((g["maxReplicas"], g) for g in cluster["workerGroupSpecs"])]
            return [
                (n, c["resources"], g["template"]["spec"].get("nodeSelector", {}))
                for n, g in groups
                for c in g["template"]["spec"]["containers"]
            ]
        case _:
            predictor = spec["predictor"]
            return [(predictor["maxReplicas"], predictor["model"]["resources"], predictor.get("nodeSelector", {}))]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_fits_the_quota_of_the_team_whose_namespace_it_names(path: Path) -> None:
    """At its largest, within the team's CPU, memory and GPUs (per GPU model: quota plus what it may borrow), at
    a priority the team may use."""
    from components.config.base import quantity_value
    from components.team_quotas import gpu_borrowing, gpu_quota
    from components.teams import allowed_priorities

    obj, plan = load(path), PlanView.of(plan_of("dev"))
    [team] = [t for t in plan.config.teams if t.name == obj["metadata"]["namespace"]]
    cpu = memory = 0
    gpus: dict[str, int] = {}
    for count, resources, selector in replicated(obj):
        requests = resources["requests"]
        cpu += count * quantity_value(str(requests.get("cpu", "0")))
        memory += count * quantity_value(str(requests.get("memory", "0")))
        for resource, amount in requests.items():
            if is_gpu_resource(resource):
                [pool] = [
                    p
                    for p in plan.pools
                    if team.name in p.teams
                    and any(
                        all(p.node_labels(c, "operator").get(k) == v for k, v in selector.items())
                        for c in p.capacity_types
                    )
                    and resource in p.advertised
                ][:1]
                key = pool.model.key if resource == "nvidia.com/gpu" else resource
                gpus[key] = gpus.get(key, 0) + count * int(amount)
    assert cpu <= quantity_value(team.resources.cpu) and memory <= quantity_value(team.resources.memory)
    quota, borrowing = gpu_quota(team, plan.pools), gpu_borrowing(team, plan.pools)
    assert gpus and all(n <= quota.get(k, 0) + borrowing.get(k, 0) for k, n in gpus.items()), (gpus, quota)
    priorities = {p["priorityClassName"] for p in pod_specs(obj)}
    if "kueue.x-k8s.io/priority-class" in obj["metadata"].get("labels", {}):
        priorities.add(obj["metadata"]["labels"]["kueue.x-k8s.io/priority-class"])
    assert priorities and priorities <= set(allowed_priorities(team))


def test_the_readme_shows_each_example_as_it_is() -> None:
    readme = (PROJECT / "README.md").read_text()
    for path in EXAMPLES:
        assert f"```yaml\n{path.read_text()}```" in readme, f"README's copy of {path.name} differs"
