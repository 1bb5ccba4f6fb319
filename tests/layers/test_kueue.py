"""Kueue: the pinned chart with the platform's integrations, ResourceFlavors per kind of GPU quota,
WorkloadPriorityClasses, and per team a ClusterQueue in one cohort and a LocalQueue."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.gpu_pools import resolve_gpu_pools
from components.kueue import FRAMEWORKS, kueue_values, manager_configuration
from components.queueing import cluster_queue
from conftest import H100_MIG, STACKS, plan_of, plan_variant, platform_config
from tools.offline import PlanResult

REFERENCE_DIR = Path(os.environ.get("REFERENCE_DIR", Path(__file__).resolve().parents[3] / "shared" / "reference"))
RELEASE = "kubernetes:helm.sh/v3:Release"
AWS = {"cloud": "aws", "name": "ml", "region": "us-east-1"}
H100 = {"name": "train", "gpu": "h100-80gb", "gpusPerNode": 8, "maxNodes": 2}
A100_MIG = {
    "name": "mig-a100",
    "gpu": "a100-80gb",
    "gpusPerNode": 8,
    "minNodes": 1,
    "maxNodes": 1,
    "capacity": ["on-demand"],
    "sharing": {"mode": "mig", "profile": "1g.10gb"},
}


def kind_objects(plan: PlanResult, kind: str) -> dict[tuple[str | None, str], dict[str, Any]]:
    found = {}
    for r in plan.registrations:
        if isinstance(r.inputs, dict) and r.inputs.get("kind") == kind:
            meta = r.inputs["metadata"]
            found[(meta.get("namespace"), meta["name"])] = r.inputs
    return found


def upstream_configuration() -> dict[str, Any]:
    values = yaml.safe_load((REFERENCE_DIR / "chart-values" / "kueue-0.19.2" / "values.yaml").read_text())
    return dict(yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"]))


def test_manager_configuration_is_the_charts_own_with_the_platforms_integrations() -> None:
    """The chart takes the Configuration as one string: anything we leave out is lost, so compare with upstream's."""
    ours, upstream = manager_configuration(), upstream_configuration()
    # the chart's default leaves the legacy PyTorchJob off; the platform's job kinds are all on
    assert "kubeflow.org/pytorchjob" not in upstream["integrations"]["frameworks"]
    assert ours["integrations"]["frameworks"] == list(FRAMEWORKS)
    assert set(FRAMEWORKS) == {
        "batch/job",
        "jobset.x-k8s.io/jobset",
        "trainer.kubeflow.org/trainjob",
        "ray.io/rayjob",
        "ray.io/raycluster",
        "ray.io/rayservice",
        "kubeflow.org/pytorchjob",
    }
    # per-ClusterQueue usage metrics (showback) on; everything else exactly upstream's
    assert ours["metrics"] == {**upstream["metrics"], "enableClusterQueueResources": True}
    # Kueue manages the team namespaces (upstream default: every namespace but kube-system and its own)
    assert ours["managedJobsNamespaceSelector"] == {
        "matchExpressions": [{"key": "ml-platform.io/team", "operator": "Exists"}]
    }
    # node-local resources besides CPU, memory and GPUs would make jobs inadmissible under BlockUndeclared
    assert ours["resources"] == {"excludeResourcePrefixes": ["ephemeral-storage", "hugepages-", "vpc.amazonaws.com/"]}
    assert not any(p.startswith("nvidia.com") for p in ours["resources"]["excludeResourcePrefixes"])
    # waitForPodsReady is left to Kueue's v1beta2 default: on, 30m, requeued with backoff
    assert "waitForPodsReady" not in ours
    ours_only = ("integrations", "metrics", "managedJobsNamespaceSelector", "resources")
    rest = {k: v for k, v in ours.items() if k not in ours_only}
    assert rest == {k: v for k, v in upstream.items() if k not in ours_only}
    # the chart injects internalCertManagement itself (its own Service and Secret names): we must not set it
    assert "internalCertManagement" not in ours and "featureGates" not in ours


def test_the_release_carries_that_configuration_and_runs_on_system_nodes() -> None:
    [release] = [r for r in plan_of("prod").of_type(RELEASE) if r.inputs["name"] == "kueue"]
    inputs = release.inputs
    assert (inputs["chart"], inputs["version"], inputs["namespace"]) == (
        "oci://registry.k8s.io/kueue/charts/kueue",
        "0.19.2",
        "kueue-system",
    )
    values = inputs["values"]
    assert yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"]) == manager_configuration()
    manager = values["controllerManager"]
    assert manager["nodeSelector"]["ml-platform.io/role"] == "system"
    # prod: its webhooks admit every Job, so two replicas and a PDB
    assert manager["replicas"] == 2 and manager["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
    [spread] = manager["topologySpreadConstraints"]  # the two replicas on two nodes where there are two
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["whenUnsatisfiable"] == "ScheduleAnyway"
    # the chart's selector labels (kueue.selectorLabels) for release `kueue`
    assert spread["labelSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "kueue",
        "app.kubernetes.io/instance": "kueue",
    }
    # its CRDs are chart templates: deleting the release deletes every queue and workload
    assert release.protect is True
    assert values["enablePrometheus"] is True  # kube-prometheus-stack selects every ServiceMonitor
    assert "replicas" not in kueue_values(True, highly_available=False)["controllerManager"]


def test_kueue_waits_for_the_prometheus_crds_and_queues_wait_for_kueue() -> None:
    plan = plan_of("prod")
    by_name = {r.name: r for r in plan.registrations}
    kueue = by_name["kueue"]
    assert by_name["kube-prometheus-stack"].urn in kueue.dependencies
    for r in plan.registrations:
        if isinstance(r.inputs, dict) and r.inputs.get("kind") in ("ResourceFlavor", "WorkloadPriorityClass"):
            assert kueue.urn in r.dependencies, r.name
        if isinstance(r.inputs, dict) and r.inputs.get("kind") == "ClusterQueue":
            assert kueue.urn in r.dependencies
            flavors = {by_name[n].urn for n in by_name if n.startswith("resourceflavor-")}
            assert flavors <= set(r.dependencies)


def test_a_flavor_per_gpu_model_and_per_mig_resource_each_with_the_gpu_toleration() -> None:
    flavors = {name: obj["spec"] for (_, name), obj in kind_objects(plan_of("prod"), "ResourceFlavor").items()}
    toleration = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert flavors == {
        "default": {},
        "h100-80gb": {"nodeLabels": {"ml-platform.io/gpu": "h100-80gb"}, "tolerations": toleration},
        "a100-80gb": {"nodeLabels": {"ml-platform.io/gpu": "a100-80gb"}, "tolerations": toleration},
        # the resource finds its nodes; one profile name can come from pools of two models
        "mig-1g.10gb": {"tolerations": toleration},
    }


def test_one_mig_profile_from_two_models_is_one_flavor() -> None:
    cfg = platform_config(AWS, [H100_MIG, A100_MIG], teams=[{"name": "a", "gpuQuota": {"nvidia.com/mig-1g.10gb": 8}}])
    queue = cluster_queue(cfg.teams[0], resolve_gpu_pools(cfg))
    [_, mig] = queue["spec"]["resourceGroups"]
    assert mig == {
        "coveredResources": ["nvidia.com/mig-1g.10gb"],
        "flavors": [
            {
                "name": "mig-1g.10gb",
                "resources": [{"name": "nvidia.com/mig-1g.10gb", "nominalQuota": 8, "borrowingLimit": 8}],
            }
        ],
    }


def test_workload_priority_classes_mirror_the_priority_classes() -> None:
    plan = plan_of("dev")
    classes = {name: o["value"] for (_, name), o in kind_objects(plan, "PriorityClass").items()}
    workload = {name: o["value"] for (_, name), o in kind_objects(plan, "WorkloadPriorityClass").items()}
    assert workload == classes == {"production-serving": 1000, "training-critical": 500, "development": 100}


def test_cluster_queues_hold_the_teams_quota_per_flavor_in_one_cohort() -> None:
    queues = {name: o["spec"] for (_, name), o in kind_objects(plan_of("prod"), "ClusterQueue").items()}
    assert set(queues) == {"research", "serving", "ml-platform-spare"}
    del queues["ml-platform-spare"]
    assert {q["cohortName"] for q in queues.values()} == {"ml-platform"}
    for name, q in queues.items():
        assert q["namespaceSelector"] == {"matchLabels": {"ml-platform.io/team": name}}
        assert q["preemption"] == {
            "reclaimWithinCohort": "Any",
            "borrowWithinCohort": {"policy": "Never"},
            "withinClusterQueue": "LowerPriority",
        }
    quotas = {
        (flavor["name"], res["name"]): (res["nominalQuota"], res["borrowingLimit"])
        for group in queues["serving"]["resourceGroups"]
        for flavor in group["flavors"]
        for res in flavor["resources"]
    }
    # {nvidia.com/mig-1g.10gb: 56, a100-80gb: 16}, borrowable up to as much again; CPU and memory not borrowed
    assert quotas == {
        ("default", "cpu"): ("64", "0"),
        ("default", "memory"): ("256Gi", "0"),
        ("a100-80gb", "nvidia.com/gpu"): (16, 16),
        ("mig-1g.10gb", "nvidia.com/mig-1g.10gb"): (56, 56),
    }


@pytest.mark.parametrize("stack", STACKS)
def test_every_flavor_covers_exactly_its_groups_resources_and_each_appears_once(stack: str) -> None:
    """Kueue's rules: each flavor lists the group's coveredResources in order; no flavor or resource in two groups."""
    for (_, name), queue in kind_objects(plan_of(stack), "ClusterQueue").items():
        flavors: list[str] = []
        resources: list[str] = []
        for group in queue["spec"]["resourceGroups"]:
            covered = group["coveredResources"]
            resources += covered
            for flavor in group["flavors"]:
                flavors.append(flavor["name"])
                assert [r["name"] for r in flavor["resources"]] == covered, (stack, name, flavor["name"])
        assert len(flavors) == len(set(flavors)) and len(resources) == len(set(resources)), (stack, name)


def test_an_explicit_borrowing_limit_and_the_quota_backstop_follow_it(tmp_path: Path) -> None:
    def limit(c: dict[str, Any]) -> None:
        c["ml-platform:teams"][1]["gpuBorrowingLimit"] = {"nvidia.com/mig-1g.10gb": 0, "a100-80gb": 4}

    plan = plan_variant(tmp_path, "prod", limit)
    queue = kind_objects(plan, "ClusterQueue")[(None, "serving")]["spec"]
    limits = {f["name"]: f["resources"][0]["borrowingLimit"] for g in queue["resourceGroups"][1:] for f in g["flavors"]}
    assert limits == {"a100-80gb": 4, "mig-1g.10gb": 0}
    hard = kind_objects(plan, "ResourceQuota")[("serving", "team-quota")]["spec"]["hard"]
    assert hard["requests.nvidia.com/gpu"] == "20" and hard["requests.nvidia.com/mig-1g.10gb"] == "56"


def test_every_team_submits_to_its_default_local_queue() -> None:
    """Kueue sends a job without a queue label to the namespace's LocalQueue named `default` (always on in 0.19)."""
    queues = kind_objects(plan_of("dev"), "LocalQueue")
    assert set(queues) == {("research", "default"), ("applied", "default")}
    for (namespace, _), q in queues.items():
        assert q["spec"] == {"clusterQueue": namespace}


def test_gpus_no_team_is_promised_are_lent_by_the_spare_queue() -> None:
    """Kueue lends only other ClusterQueues' nominal quota: without the spare queue the 32 H100s no team is
    promised could never be borrowed."""
    queues = kind_objects(plan_of("prod"), "ClusterQueue")
    spare = queues[(None, "ml-platform-spare")]["spec"]
    assert "namespaceSelector" not in spare  # nil: no LocalQueue may submit to it, it only lends
    assert spare["cohortName"] == "ml-platform"
    assert spare["resourceGroups"] == [
        {
            "coveredResources": ["nvidia.com/gpu"],
            "flavors": [{"name": "h100-80gb", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": 32}]}],
        }
    ]


def test_no_spare_queue_when_the_teams_are_promised_everything() -> None:
    from components.queueing import spare_queue

    cfg = platform_config(AWS, [H100], teams=[{"name": "a", "gpuQuota": 16}])
    assert spare_queue(cfg.teams, resolve_gpu_pools(cfg)) is None
    cfg = platform_config(AWS, [H100, A100_MIG], teams=[{"name": "a", "gpuQuota": {"h100-80gb": 10}}])
    spare = spare_queue(cfg.teams, resolve_gpu_pools(cfg))
    assert spare is not None
    amounts = {
        f["name"]: f["resources"][0]["nominalQuota"] for g in spare["spec"]["resourceGroups"] for f in g["flavors"]
    }
    assert amounts == {"h100-80gb": 6, "mig-1g.10gb": 56}
