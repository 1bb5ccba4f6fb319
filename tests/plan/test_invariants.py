"""Platform invariants: they hold on every stack, and each one fails on a plan built to break it."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import STACKS, plan_of, plan_variant
from tools.invariants import INVARIANTS, PlanView, check_plan
from tools.invariants.plan import PlannedResource

RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"


def view(stack: str) -> PlanView:
    return PlanView.of(plan_of(stack))


def edit(plan: PlanView, match: Callable[[PlannedResource], bool], change: Callable[[dict[str, Any]], Any]) -> PlanView:
    """The plan with `change` applied to the inputs of every matching resource (a copy: cached plans stay intact)."""
    resources = []
    hit = False
    for r in plan.resources:
        if match(r):
            inputs = copy.deepcopy(r.inputs)
            change(inputs)
            r = dataclasses.replace(r, inputs=inputs)
            hit = True
        resources.append(r)
    assert hit, "the edit matched no resource"
    return dataclasses.replace(plan, resources=tuple(resources))


def without(plan: PlanView, match: Callable[[PlannedResource], bool]) -> PlanView:
    kept = tuple(r for r in plan.resources if not match(r))
    assert len(kept) < len(plan.resources)
    return dataclasses.replace(plan, resources=kept)


def release(name: str) -> Callable[[PlannedResource], bool]:
    return lambda r: r.type == RELEASE and r.inputs.get("name") == name


def nodepool(name: str) -> Callable[[PlannedResource], bool]:
    return lambda r: r.type == "kubernetes:karpenter.sh/v1:NodePool" and r.inputs["metadata"]["name"] == name


def broken(plan: PlanView) -> set[tuple[str, str]]:
    return {(v.invariant, v.subject) for v in check_plan(plan)}


@pytest.mark.parametrize("stack", STACKS)
def test_every_invariant_holds_on_every_stack(stack: str) -> None:
    assert check_plan(view(stack)) == []


def test_invariants_have_unique_ids_and_say_what_they_promise() -> None:
    ids = [i.id for i in INVARIANTS]
    assert len(ids) == len(set(ids)) >= 7 and all(i.description for i in INVARIANTS)


# ---------------------------------------------------------------- something advertises every pool's GPUs


def test_no_device_plugin_no_gpus() -> None:
    """Today's EKS bug: nodes with the driver but nothing advertising nvidia.com/gpu."""
    plan = without(view("prod"), release("gpu-operator"))
    assert {("gpu-advertised", f"GPU pool {p}") for p in ("train-h100", "serve-mig", "serve-a100")} <= broken(plan)


def test_operator_without_its_device_plugin_or_nfd() -> None:
    plan = edit(view("dev"), release("gpu-operator"), lambda i: i["values"]["devicePlugin"].update(enabled=False))
    assert ("gpu-advertised", "GPU pool notebooks") in broken(plan)
    plan = edit(view("dev"), release("gpu-operator"), lambda i: i["values"]["nfd"].update(enabled=False))
    assert ("gpu-advertised", "GPU pool notebooks") in broken(plan)


def test_a_pool_whose_nodes_nothing_creates() -> None:
    plan = without(view("dev"), lambda r: nodepool("notebooks-spot")(r) or nodepool("notebooks-on-demand")(r))
    assert [v.message for v in check_plan(plan) if v.subject == "GPU pool notebooks"] == [
        "nothing in the plan creates this pool's nodes"
    ]


# ---------------------------------------------------------------- it reaches the nodes


def test_operands_that_do_not_tolerate_the_gpu_taint() -> None:
    other = [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    plan = edit(view("prod"), release("gpu-operator"), lambda i: i["values"]["daemonsets"].update(tolerations=other))
    violations = [v for v in check_plan(plan) if v.invariant == "gpu-advertiser-reaches-nodes"]
    assert {v.subject for v in violations} == {"GPU pool train-h100", "GPU pool serve-mig", "GPU pool serve-a100"}
    assert "do not tolerate taint nvidia.com/gpu=true:NoSchedule" in violations[0].message


def test_a_node_label_that_keeps_the_device_plugin_off() -> None:
    plan = edit(
        view("dev"),
        nodepool("train-a100-spot"),
        lambda i: i["spec"]["template"]["metadata"]["labels"].update({"nvidia.com/gpu.deploy.device-plugin": "false"}),
    )
    assert ("gpu-advertiser-reaches-nodes", "GPU pool train-a100") in broken(plan)


def test_bottlerocket_nodes_must_keep_the_operators_plugin_off(tmp_path: Path) -> None:
    def bottlerocket(c: dict[str, Any]) -> None:
        c["ml-platform:scaling"] = {"amiFamily": "bottlerocket"}
        c["ml-platform:gpuPools"][0]["sharing"] = {"mode": "none"}

    plan = PlanView.of(plan_variant(tmp_path, "dev", bottlerocket))
    assert check_plan(plan) == []
    plan = edit(
        plan,
        nodepool("train-a100-spot"),
        lambda i: i["spec"]["template"]["metadata"]["labels"].pop("nvidia.com/gpu.deploy.operands"),
    )
    found = {v.invariant: v.message for v in check_plan(plan)}
    assert "a second one on the same socket" in found["gpu-advertiser-reaches-nodes"]
    # ... and dcgm-exporter, which selects the nodes the operator leaves alone, no longer measures them.
    assert "no dcgm-exporter selects them" in found["gpu-metrics-collected"]


# ---------------------------------------------------------------- sharing configs


def test_time_sliced_nodes_selecting_a_config_that_does_not_exist() -> None:
    def drop(i: dict[str, Any]) -> None:
        i["values"]["devicePlugin"]["config"]["data"] = {
            "other": i["values"]["devicePlugin"]["config"]["data"]["notebooks"]
        }

    plan = edit(view("dev"), release("gpu-operator"), drop)
    messages = [v.message for v in check_plan(plan) if v.invariant == "sharing-config-exists"]
    assert messages and "selects device-plugin config 'notebooks', which the GPU Operator does not have" in messages[0]


def test_time_sliced_nodes_sharing_another_amount_or_not_at_all() -> None:
    def three_ways(i: dict[str, Any]) -> None:
        data = i["values"]["devicePlugin"]["config"]["data"]
        data["notebooks"] = data["notebooks"].replace("replicas: 4", "replicas: 3")

    plan = edit(view("dev"), release("gpu-operator"), three_ways)
    assert any("shares 3 ways, the pool asks for 4" in v.message for v in check_plan(plan))
    plan = edit(
        view("dev"),
        nodepool("notebooks-spot"),
        lambda i: i["spec"]["template"]["metadata"]["labels"].pop("nvidia.com/device-plugin.config"),
    )
    assert ("sharing-config-exists", "GPU pool notebooks") in broken(plan)


def test_gke_time_sharing_that_differs_from_the_pool() -> None:
    def two(i: dict[str, Any]) -> None:
        i["nodeConfig"]["guestAccelerators"][0]["gpuSharingConfig"]["maxSharedClientsPerGpu"] = 2

    plan = edit(view("gke"), lambda r: r.type == GKE_NODE_POOL and r.inputs["name"] == "dev-l4-spot", two)
    assert ("sharing-config-exists", "GPU pool dev-l4") in broken(plan)


# ---------------------------------------------------------------- MIG layouts


def test_mig_nodes_selecting_a_layout_the_mig_manager_lacks() -> None:
    plan = edit(
        view("prod"),
        lambda r: r.type == NODE_GROUP and r.name == "serve-mig-baseline",
        lambda i: i["labels"].update({"nvidia.com/mig.config": "all-2g.20gb"}),
    )
    [violation] = [v for v in check_plan(plan) if v.invariant == "mig-config-known"]
    assert "selects MIG layout 'all-2g.20gb', which the MIG manager does not have" in violation.message


def test_a_mig_layout_without_an_entry_for_the_pools_gpu() -> None:
    def a100_only(i: dict[str, Any]) -> None:
        migs = i["values"]["migManager"]["config"]["data"]
        config = yaml.safe_load(migs["config.yaml"])
        config["mig-configs"]["all-1g.10gb"][0]["device-filter"] = ["0x20B010DE"]
        migs["config.yaml"] = yaml.safe_dump(config)

    plan = edit(view("prod"), release("gpu-operator"), a100_only)
    assert any("has no entry for NVIDIA H100 80GB GPUs" in v.message for v in check_plan(plan))


def test_gke_partitions_that_differ_from_the_pool() -> None:
    def other(i: dict[str, Any]) -> None:
        i["nodeConfig"]["guestAccelerators"][0]["gpuPartitionSize"] = "2g.20gb"

    plan = edit(view("gke"), lambda r: r.type == GKE_NODE_POOL and "serve-mig" in r.inputs["name"], other)
    assert ("mig-config-known", "GPU pool serve-mig") in broken(plan)


# ---------------------------------------------------------------- metrics


def test_gpu_metrics_not_collected() -> None:
    plan = edit(view("prod"), release("gpu-operator"), lambda i: i["values"]["dcgmExporter"].update(enabled=False))
    assert ("gpu-metrics-collected", "GPU pool train-h100") in broken(plan)
    plan = edit(
        view("gke"),
        lambda r: r.type == "gcp:container/cluster:Cluster",
        lambda i: i["monitoringConfig"].update(enableComponents=["SYSTEM_COMPONENTS"]),
    )
    assert ("gpu-metrics-collected", "GPU pool train-a100") in broken(plan)


# ---------------------------------------------------------------- always-on GPU nodes


def test_a_gpu_node_kept_running_that_the_pool_does_not_ask_for() -> None:
    plan = edit(
        view("gke"),
        lambda r: r.type == GKE_NODE_POOL and r.inputs["name"] == "train-a100-spot",
        lambda i: i["autoscaling"].update(totalMinNodeCount=1),
    )
    [violation] = [v for v in check_plan(plan) if v.invariant == "no-unintended-always-on"]
    assert violation.subject == "GPU pool train-a100" and "does not set minNodes" in violation.message
    plan = edit(
        view("prod"),
        lambda r: r.type == NODE_GROUP and r.name == "serve-mig-baseline",
        lambda i: i["scalingConfig"].update(desiredSize=3),
    )
    assert any("more than minNodes (1)" in v.message for v in check_plan(plan))


# ---------------------------------------------------------------- monitoring before what needs its CRDs


def test_monitors_and_rules_before_the_prometheus_operators_crds() -> None:
    plan = view("dev")
    stack = next(r for r in plan.resources if release("kube-prometheus-stack")(r))
    resources = tuple(
        dataclasses.replace(r, dependencies=tuple(d for d in r.dependencies if d != stack.urn)) for r in plan.resources
    )
    subjects = {v.subject for v in check_plan(dataclasses.replace(plan, resources=resources))}
    assert {"PrometheusRule/ml-platform-gpu", "Helm release gpu-operator"} <= subjects
    assert "Helm release gpu-operator" in {
        v.subject for v in check_plan(without(plan, release("kube-prometheus-stack")))
    }


def test_the_plan_cli_fails_on_a_broken_invariant_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tools.plan
    from tools.invariants import Violation

    monkeypatch.setattr(tools.plan, "check_plan", lambda plan: [Violation("gpu-advertised", "GPU pool x", "nothing")])
    out = tmp_path / "out"
    assert tools.plan.main(["local", "--out", str(out)]) == 1
    assert not out.exists()
    assert "1 platform invariant(s) broken in Pulumi.local.yaml; nothing was written:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("taint", "tolerated"),
    [
        ({"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}, True),  # ours
        ({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}, True),  # GKE's
        ({"key": "nvidia.com/gpu", "value": "true", "effect": "NoExecute"}, False),
        ({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, False),
    ],
)
def test_the_operators_tolerations_cover_both_gpu_taints(taint: dict[str, str], tolerated: bool) -> None:
    from components.gpu.operator import GPU_TOLERATIONS
    from tools.invariants.gpu import _tolerates

    assert _tolerates(GPU_TOLERATIONS, taint) is tolerated


# ---------------------------------------------------------------- deploy-time facts of the cluster

EKS = "aws:eks/cluster:Cluster"
GKE = "gcp:container/cluster:Cluster"
API_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def test_a_private_eks_endpoint_without_a_path() -> None:
    """The first `pulumi up` of prod would create the cluster and time out on every chart."""
    plan = without(view("prod"), lambda r: r.type == API_INGRESS)
    assert ("api-endpoint-reachable", "EKS cluster ml-prod") in broken(plan)


def test_a_chart_installed_before_the_path_is_open() -> None:
    rule = next(r.urn for r in view("prod").of_type(API_INGRESS))

    def detach(r: PlannedResource) -> bool:
        return r.type == RELEASE and r.inputs.get("name") == "karpenter"

    plan = view("prod")
    resources = tuple(
        dataclasses.replace(r, dependencies=tuple(d for d in r.dependencies if d != rule)) if detach(r) else r
        for r in plan.resources
    )
    violations = check_plan(dataclasses.replace(plan, resources=resources))
    assert [v.message for v in violations] == [
        "Helm release karpenter does not wait for the API path (1 ingress rule(s))"
    ]


def test_a_public_eks_endpoint_open_to_nobody() -> None:
    plan = edit(view("dev"), lambda r: r.type == EKS, lambda i: i["vpcConfig"].update(publicAccessCidrs=[]))
    assert broken(plan) == {("api-endpoint-reachable", "EKS cluster ml-dev")}


def test_a_private_gke_endpoint_that_authorizes_only_its_own_range() -> None:
    def private(inputs: dict[str, Any]) -> None:
        inputs["privateClusterConfig"]["enablePrivateEndpoint"] = True
        inputs["masterAuthorizedNetworksConfig"] = {"cidrBlocks": [{"cidrBlock": "10.60.0.0/20"}]}

    assert broken(edit(view("gke"), lambda r: r.type == GKE, private)) == {
        ("api-endpoint-reachable", "GKE cluster ml-gke")
    }

    def pods_range(inputs: dict[str, Any]) -> None:  # a block of the pods range is the cluster's own too
        private(inputs)
        inputs["masterAuthorizedNetworksConfig"]["cidrBlocks"].append({"cidrBlock": "10.64.0.0/16"})

    assert broken(edit(view("gke"), lambda r: r.type == GKE, pods_range)) == {
        ("api-endpoint-reachable", "GKE cluster ml-gke")
    }
    ok = edit(
        view("gke"),
        lambda r: r.type == GKE,
        lambda i: (private(i), i["masterAuthorizedNetworksConfig"]["cidrBlocks"].append({"cidrBlock": "10.20.0.0/16"})),
    )
    assert broken(ok) == set()


def test_a_key_ring_with_a_fixed_name() -> None:
    """GCP keeps key rings forever: `pulumi up` after a `destroy` would fail with 409."""
    plan = without(view("gke"), lambda r: r.type == "random:index/randomId:RandomId")
    [(invariant, subject)] = broken(plan)
    assert invariant == "names-survive-destroy" and subject.startswith("KeyRing ml-gke-gke-")


# ---------------------------------------------------------------- teams


def team_quota(namespace: str) -> Callable[[PlannedResource], bool]:
    return lambda r: (
        r.type == "kubernetes:core/v1:ResourceQuota"
        and r.inputs["metadata"]["name"] == "team-quota"
        and r.inputs["metadata"]["namespace"] == namespace
    )


def test_a_team_whose_quota_leaves_a_gpu_resource_unbounded() -> None:
    """Without requests.nvidia.com/mig-1g.10gb the serving team could take every MIG slice."""
    plan = edit(view("prod"), team_quota("serving"), lambda i: i["spec"]["hard"].pop("requests.nvidia.com/mig-1g.10gb"))
    violations = [v for v in check_plan(plan)]
    assert [(v.invariant, v.subject) for v in violations] == [("team-gpu-quota-covers-pools", "team serving")]
    assert "serve-mig" in violations[0].message and "requests.nvidia.com/mig-1g.10gb" in violations[0].message


def test_a_team_without_a_quota_at_all() -> None:
    plan = without(view("dev"), team_quota("applied"))
    assert broken(plan) == {("team-gpu-quota-covers-pools", "team applied")}


# ---------------------------------------------------------------- every team can queue work on flavors that exist


def kueue_object(kind: str, name: str, namespace: str | None = None) -> Callable[[PlannedResource], bool]:
    def match(r: PlannedResource) -> bool:
        meta = r.inputs.get("metadata", {}) if isinstance(r.inputs, dict) else {}
        return r.inputs.get("kind") == kind and meta.get("name") == name and meta.get("namespace") == namespace

    return match


def test_a_team_without_a_local_queue() -> None:
    plan = without(view("prod"), kueue_object("LocalQueue", "default", "research"))
    violations = check_plan(plan)
    assert [(v.invariant, v.subject) for v in violations] == [("team-can-queue", "team research")]
    assert "no LocalQueue" in violations[0].message


def test_a_local_queue_pointing_at_a_missing_cluster_queue() -> None:
    plan = without(view("dev"), kueue_object("ClusterQueue", "applied"))
    assert broken(plan) == {("team-can-queue", "team applied")}


def test_a_cluster_queue_that_does_not_accept_its_teams_namespace() -> None:
    def other_team(inputs: dict[str, Any]) -> None:
        inputs["spec"]["namespaceSelector"] = {"matchLabels": {"ml-platform.io/team": "research"}}

    plan = edit(view("prod"), kueue_object("ClusterQueue", "serving"), other_team)
    violations = check_plan(plan)
    assert [(v.invariant, v.subject) for v in violations] == [("team-can-queue", "team serving")]
    assert "namespaceSelector" in violations[0].message


def test_a_cluster_queue_naming_a_flavor_that_does_not_exist() -> None:
    plan = without(view("prod"), kueue_object("ResourceFlavor", "mig-1g.10gb"))
    assert broken(plan) == {("queue-flavors-exist", "ClusterQueue serving")}


def test_a_gpu_flavor_whose_node_labels_match_no_pool() -> None:
    """Jobs admitted on quota of a flavor no node matches would wait for nodes that never come."""

    def typo(inputs: dict[str, Any]) -> None:
        inputs["spec"]["nodeLabels"] = {"ml-platform.io/gpu": "h100-80g"}

    plan = edit(view("prod"), kueue_object("ResourceFlavor", "h100-80gb"), typo)
    violations = check_plan(plan)
    assert {(v.invariant, v.subject) for v in violations} == {
        ("queue-flavors-exist", "ClusterQueue research"),
        ("queue-flavors-exist", "ClusterQueue ml-platform-spare"),  # it lends H100s too
    }
    assert all("nvidia.com/gpu" in v.message and "h100-80gb" in v.message for v in violations)


def test_a_team_whose_quota_leaves_another_teams_mig_slices_unbounded() -> None:
    """research may not use serve-mig; without a 0 for its MIG resource a bare pod could take serving's slices."""
    plan = edit(
        view("prod"), team_quota("research"), lambda i: i["spec"]["hard"].pop("requests.nvidia.com/mig-1g.10gb")
    )
    violations = check_plan(plan)
    assert [(v.invariant, v.subject) for v in violations] == [("team-gpu-quota-covers-pools", "team research")]
    assert "may not use" in violations[0].message and "serve-mig" in violations[0].message


# ---------------------------------------------------------------- NetworkPolicies that something enforces


def test_network_policies_on_eks_without_the_cni_policy_agent() -> None:
    def off(inputs: dict[str, Any]) -> None:
        inputs["configurationValues"] = None

    plan = edit(view("dev"), lambda r: r.type == "aws:eks/addon:Addon" and r.inputs["addonName"] == "vpc-cni", off)
    violations = check_plan(plan)
    assert [(v.invariant, v.subject) for v in violations] == [("network-policies-enforced", "add-on vpc-cni")]


def test_network_policies_on_gke_without_dataplane_v2() -> None:
    def legacy(inputs: dict[str, Any]) -> None:
        del inputs["datapathProvider"]

    plan = edit(view("gke"), lambda r: r.type == "gcp:container/cluster:Cluster", legacy)
    assert broken(plan) == {("network-policies-enforced", "GKE cluster")}


# ---------------------------------------------------------------- the platform's own workloads


def ray_cluster(namespace: str) -> Callable[[PlannedResource], bool]:
    return lambda r: r.type == "kubernetes:ray.io/v1:RayCluster" and r.inputs["metadata"]["namespace"] == namespace


def gpu_workers(inputs: dict[str, Any]) -> dict[str, Any]:
    """The GPU worker group's pod spec, to edit in place (edit() works on a copy of the inputs)."""
    [group] = [g for g in inputs["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu"]
    spec: dict[str, Any] = group["template"]["spec"]
    return spec


def test_a_platform_ray_cluster_without_dev_shm_breaks_the_mandatory_policy() -> None:
    def no_shm(inputs: dict[str, Any]) -> None:
        gpu_workers(inputs)["volumes"][0]["emptyDir"] = {}  # disk-backed: the bus-error classic

    violations = check_plan(edit(view("dev"), ray_cluster("research"), no_shm))
    assert [(v.invariant, v.subject) for v in violations] == [
        ("platform-workloads-pass-policies", "RayCluster research/shared")
    ]
    assert "gpu-shm-memory-volume" in violations[0].message


def test_a_platform_ray_cluster_with_gpu_requests_but_no_limits_breaks_the_mandatory_policy() -> None:
    def half(inputs: dict[str, Any]) -> None:
        gpu_workers(inputs)["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = 2

    violations = check_plan(edit(view("dev"), ray_cluster("research"), half))
    assert {(v.invariant, v.subject) for v in violations} == {
        ("platform-workloads-pass-policies", "RayCluster research/shared")
    }
    assert any("gpu-limits-match-requests" in v.message for v in violations)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda i: i["metadata"]["labels"].update({"kueue.x-k8s.io/queue-name": "gpu"}), "LocalQueue gpu"),
        (lambda i: gpu_workers(i)["nodeSelector"].update({"ml-platform.io/pool": "train-a10"}), "no planned GPU pool"),
        (lambda i: gpu_workers(i)["nodeSelector"].update({"ml-platform.io/pool": "notebooks"}), "whose nodes are a10g"),
        (
            lambda i: gpu_workers(i)["nodeSelector"].update(
                {"ml-platform.io/pool": "notebooks", "ml-platform.io/gpu": "a10g"}
            ),
            None,
        ),
        (lambda i: gpu_workers(i).pop("tolerations"), "do not tolerate"),
    ],
)
def test_a_platform_ray_cluster_that_would_never_run(
    change: Callable[[dict[str, Any]], Any], message: str | None
) -> None:
    violations = check_plan(edit(view("dev"), ray_cluster("research"), change))
    if message is None:  # notebooks offers nvidia.com/gpu too (time-sliced): the pool exists and fits
        assert violations == []
        return
    assert [(v.invariant, v.subject) for v in violations] == [("ray-clusters-land", "RayCluster research/shared")]
    assert message in violations[0].message


def runtime_pod(inputs: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = inputs["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"][
        "spec"
    ]
    return pod


def is_runtime(r: PlannedResource) -> bool:
    return r.type == "kubernetes:trainer.kubeflow.org/v1alpha1:ClusterTrainingRuntime"


def test_a_runtime_that_selects_no_pool() -> None:
    plan = edit(
        view("prod"), is_runtime, lambda i: runtime_pod(i).update(nodeSelector={"ml-platform.io/workload": "train"})
    )
    violations = check_plan(plan)
    assert [(v.invariant, v.subject) for v in violations] == [
        ("runtimes-land", "ClusterTrainingRuntime torch-distributed")
    ]


def test_a_runtime_that_does_not_tolerate_the_gpu_taint() -> None:
    plan = edit(view("prod"), is_runtime, lambda i: runtime_pod(i).pop("tolerations"))
    assert broken(plan) == {("runtimes-land", "ClusterTrainingRuntime torch-distributed")}


# ---------------------------------------------------------------- team storage is reachable, and only the team's


def k8s(kind: str, namespace: str | None, name: str) -> Callable[[PlannedResource], bool]:
    def match(r: PlannedResource) -> bool:
        obj = r.object
        return (
            obj is not None
            and obj.get("kind") == kind
            and obj["metadata"].get("namespace") == namespace
            and obj["metadata"]["name"] == name
        )

    return match


def test_a_team_without_its_volume_breaks_the_templates_that_mount_it() -> None:
    plan = without(view("dev"), k8s("PersistentVolumeClaim", "research", "team-data"))
    assert broken(plan) == {
        ("team-storage-reachable", "RayCluster research/shared"),
        ("team-storage-reachable", "ClusterTrainingRuntime torch-distributed"),
    }


def test_a_team_without_its_checkpoint_service_account_or_config() -> None:
    plan = without(view("dev"), k8s("ServiceAccount", "applied", "checkpoints"))
    assert broken(plan) == {("team-storage-reachable", "ClusterTrainingRuntime torch-distributed")}
    plan = without(view("dev"), k8s("ConfigMap", "research", "checkpoints"))
    assert ("team-storage-reachable", "RayCluster research/shared") in broken(plan)


def test_a_volume_whose_class_is_not_planned() -> None:
    plan = without(view("prod"), k8s("StorageClass", None, "team-shared"))
    assert broken(plan) == {
        ("team-storage-reachable", "PersistentVolumeClaim research/team-data"),
        ("team-storage-reachable", "PersistentVolumeClaim serving/team-data"),
    }


def test_a_checkpoint_service_account_without_its_pod_identity() -> None:
    def is_applied(r: PlannedResource) -> bool:
        return r.type == "aws:eks/podIdentityAssociation:PodIdentityAssociation" and r.inputs["namespace"] == "applied"

    assert broken(without(view("dev"), is_applied)) == {
        ("team-storage-reachable", "ServiceAccount applied/checkpoints")
    }


def test_a_role_that_reaches_another_teams_prefix() -> None:
    def other_team(inputs: dict[str, Any]) -> None:
        inputs["policy"] = inputs["policy"].replace("teams/research/", "teams/applied/")

    plan = edit(view("dev"), lambda r: r.name == "ml-dev-checkpoints-research" and "rolePolicy" in r.type, other_team)
    violations = [v for v in check_plan(plan) if v.invariant == "team-storage-reachable"]
    assert [v.subject for v in violations] == ["ServiceAccount research/checkpoints"]
    assert "teams/applied/" in violations[0].message


def test_a_workload_identity_grant_on_the_wrong_folder_or_none() -> None:
    member = "gcp:storage/managedFolderIamMember:ManagedFolderIamMember"
    plan = edit(view("gke"), lambda r: r.type == member, lambda i: i.update(managedFolder="teams/other/"))
    assert broken(plan) == {("team-storage-reachable", "ServiceAccount research/checkpoints")}
    assert broken(without(view("gke"), lambda r: r.type == member)) == {
        ("team-storage-reachable", "ServiceAccount research/checkpoints")
    }
