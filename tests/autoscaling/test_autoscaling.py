"""GPU capacity that scales from zero: Karpenter, cluster-autoscaler and GKE, through the real program."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.versions import CHARTS, CLUSTER_AUTOSCALER
from conftest import plan_of, plan_variant
from schemas import crd_schema_dir, validate_custom_resource
from tools.offline import PlanResult, Registration, redact
from vocabulary.labels import GPU_TAINT_KEY, LABEL_CAPACITY, LABEL_GPU, LABEL_POOL, LABEL_SHARING, LABEL_WORKLOAD

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
RELEASE = "kubernetes:helm.sh/v3:Release"
REFERENCE_DIR = Path(os.environ.get("REFERENCE_DIR", Path(__file__).resolve().parents[3] / "shared" / "reference"))


def objects(plan: PlanResult, typ: str) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: redact(r.inputs) for r in plan.of_type(typ)}


def release(plan: PlanResult, name: str) -> Registration:
    [found] = [r for r in plan.of_type(RELEASE) if r.inputs["name"] == name]
    return found


def requirement(node_pool: dict[str, Any], key: str) -> dict[str, Any]:
    [found] = [r for r in node_pool["spec"]["template"]["spec"]["requirements"] if r["key"] == key]
    return found


@pytest.fixture(scope="module")
def ca_plan(tmp_path_factory: pytest.TempPathFactory) -> PlanResult:
    return plan_variant(
        tmp_path_factory.mktemp("ca"), "dev", lambda c: c.update({"ml-platform:autoscaler": "cluster-autoscaler"})
    )


# ---------------------------------------------------------------- Karpenter NodePools and EC2NodeClasses


def test_one_node_class_per_gpu_pool_and_a_node_pool_per_capacity_type() -> None:
    plan = plan_of("dev")
    assert set(objects(plan, NODE_CLASS)) == {"notebooks", "train-a100", "cpu"}
    assert set(objects(plan, NODE_POOL)) == {
        "notebooks-spot",
        "notebooks-on-demand",
        "train-a100-spot",
        "train-a100-on-demand",
        "cpu",
    }


def test_gpu_node_pool_requirements_labels_taints_and_limits() -> None:
    pools = objects(plan_of("dev"), NODE_POOL)
    spot, fallback = pools["train-a100-spot"], pools["train-a100-on-demand"]
    assert requirement(spot, "node.kubernetes.io/instance-type")["values"] == ["p4d.24xlarge"]
    assert requirement(spot, "karpenter.sh/capacity-type")["values"] == ["spot"]
    assert requirement(fallback, "karpenter.sh/capacity-type")["values"] == ["on-demand"]
    assert requirement(spot, "kubernetes.io/arch")["values"] == ["amd64"]
    # Spot first: the spot NodePool outweighs its on-demand fallback.
    assert spot["spec"]["weight"] > fallback["spec"]["weight"]
    labels = spot["spec"]["template"]["metadata"]["labels"]
    assert labels == {
        LABEL_GPU: "a100-40gb",
        LABEL_POOL: "train-a100",
        LABEL_CAPACITY: "spot",
        LABEL_WORKLOAD: "training",
        LABEL_SHARING: "none",
    }
    assert fallback["spec"]["template"]["metadata"]["labels"][LABEL_CAPACITY] == "on-demand"
    assert spot["spec"]["template"]["spec"]["taints"] == [
        {"key": GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"}
    ]
    # maxNodes 2 x 8 GPUs, 2 x 96 vCPU, 2 x 1152 GiB: the hard cost cap per capacity type.
    assert spot["spec"]["limits"] == {"nodes": "2", "nvidia.com/gpu": "16", "cpu": "192", "memory": "2304Gi"}
    assert spot["spec"]["template"]["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": "train-a100",
    }
    notebooks = pools["notebooks-spot"]
    # Alternative sizes of the same GPU give spot more pools to draw from; limits use the largest.
    assert requirement(notebooks, "node.kubernetes.io/instance-type")["values"][0] == "g5.2xlarge"
    # Time-sliced x4: a node reports 4 nvidia.com/gpu; the node count is the binding cap.
    assert notebooks["spec"]["limits"] == {"nodes": "4", "nvidia.com/gpu": "16", "cpu": "64", "memory": "256Gi"}


def test_training_pools_are_never_consolidated_under_a_job() -> None:
    pools = objects(plan_of("dev"), NODE_POOL)
    training = pools["train-a100-spot"]["spec"]["disruption"]
    # A new AMI never drains a node under a job: drifted training nodes wait until they are empty.
    assert training == {
        "consolidationPolicy": "WhenEmpty",
        "consolidateAfter": "2m",
        "budgets": [{"nodes": "0", "reasons": ["Drifted"]}, {"nodes": "1"}],
    }
    dev = pools["notebooks-spot"]["spec"]["disruption"]
    assert dev["consolidationPolicy"] == "WhenEmptyOrUnderutilized" and dev["consolidateAfter"] == "2m"
    prod = objects(plan_of("prod"), NODE_POOL)
    assert prod["train-h100-spot"]["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert prod["serve-a100-on-demand"]["spec"]["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    # The field guide's scale-down delay: 2 minutes in dev, 5 in production.
    assert {p["spec"]["disruption"]["consolidateAfter"] for p in prod.values()} == {"5m"}
    for pool in prod.values():
        spec = pool["spec"]["template"]["spec"]
        assert spec["expireAfter"] == "720h" and spec["terminationGracePeriod"] == "24h"


def test_consolidate_after_is_configurable(tmp_path: Path) -> None:
    plan = plan_variant(tmp_path, "dev", lambda c: c.update({"ml-platform:scaling": {"consolidateAfter": "90s"}}))
    assert {p["spec"]["disruption"]["consolidateAfter"] for p in objects(plan, NODE_POOL).values()} == {"90s"}


def test_min_nodes_under_karpenter_is_a_baseline_group_and_the_node_pool_gets_the_rest(tmp_path: Path) -> None:
    def change(c: dict[str, Any]) -> None:
        c["ml-platform:gpuPools"][1].update(minNodes=1, maxNodes=3)

    plan = plan_variant(tmp_path, "dev", change)
    pools = objects(plan, NODE_POOL)
    # train-a100: minNodes 1 on spot (the first capacity type), maxNodes 3: Karpenter may add 2 spot nodes and
    # 3 on-demand ones; the baseline group holds the warm node.
    assert pools["train-a100-spot"]["spec"]["limits"]["nodes"] == "2"
    assert pools["train-a100-on-demand"]["spec"]["limits"]["nodes"] == "3"
    [baseline] = [g for g in plan.of_type("aws:eks/nodeGroup:NodeGroup") if g.name == "train-a100-baseline"]
    assert baseline.inputs["capacityType"] == "SPOT" and baseline.inputs["scalingConfig"]["minSize"] == 1


def test_mig_pools_under_karpenter_are_fixed_groups_without_a_node_pool() -> None:
    pools = objects(plan_of("prod"), NODE_POOL)
    assert not [p for p in pools if p.startswith("serve-mig")]
    groups = {g.name: g.inputs for g in plan_of("prod").of_type("aws:eks/nodeGroup:NodeGroup")}
    assert groups["serve-mig-baseline"]["scalingConfig"] == {"minSize": 1, "maxSize": 1, "desiredSize": 1}


def test_node_classes_gpu_ami_discovery_disk_nvme_imds_and_cost_tags() -> None:
    plan = plan_of("dev")
    classes = objects(plan, NODE_CLASS)
    train = classes["train-a100"]["spec"]
    assert train["amiSelectorTerms"] == [{"alias": "al2023@latest"}]
    assert train["role"] == "<karpenter-node.name>"
    assert train["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "ml-dev"}}]
    assert train["securityGroupSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "ml-dev"}}]
    [root] = train["blockDeviceMappings"]
    assert root["rootVolume"] is True
    assert root["ebs"] == {"volumeSize": "500Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}
    assert train["instanceStorePolicy"] == "RAID0"  # p4d local NVMe, striped
    assert train["metadataOptions"]["httpTokens"] == "required"
    assert train["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert train["tags"]["ml-platform-pool"] == "train-a100" and train["tags"]["cost-center"] == "ml-platform-dev"
    assert train["tags"]["ml-platform-team"] == "research"  # the only team that may use it
    # research may use every pool (no `pools`), applied only notebooks: both use notebooks.
    assert classes["notebooks"]["spec"]["tags"]["ml-platform-team"] == "shared"
    assert "instanceStorePolicy" not in classes["cpu"]["spec"]


@pytest.mark.skipif(crd_schema_dir() is None, reason="set CRD_SCHEMA_DIR=../shared/reference/crds")
def bottlerocket(config: dict[str, Any]) -> None:
    config["ml-platform:scaling"] = {"amiFamily": "bottlerocket", "amiVersion": "v1.40.0"}
    # Bottlerocket's own device plugin is not configured for sharing: the config rejects it (tests/config).
    config["ml-platform:gpuPools"][0]["sharing"] = {"mode": "none"}


def test_bottlerocket_and_a_pinned_ami(tmp_path: Path) -> None:
    plan = plan_variant(tmp_path, "dev", bottlerocket)
    assert plan.error is None, plan.error
    spec = objects(plan, NODE_CLASS)["train-a100"]["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.40.0"}]
    assert validate_custom_resource(objects(plan, NODE_CLASS)["train-a100"]) == []
    devices = {d["deviceName"]: d for d in spec["blockDeviceMappings"]}
    assert devices["/dev/xvdb"]["rootVolume"] is True and devices["/dev/xvdb"]["ebs"]["volumeSize"] == "500Gi"
    assert "rootVolume" not in devices["/dev/xvda"]


def test_cpu_node_pool_for_ray_cpu_workers_prefers_spot() -> None:
    cpu = objects(plan_of("dev"), NODE_POOL)["cpu"]
    assert requirement(cpu, "karpenter.sh/capacity-type")["values"] == ["spot", "on-demand"]
    assert requirement(cpu, "karpenter.k8s.aws/instance-category")["values"] == ["c", "m", "r"]
    assert cpu["spec"]["limits"] == {"cpu": "256", "memory": "1024Gi"}
    assert "taints" not in cpu["spec"]["template"]["spec"]


def test_custom_resources_wait_for_their_crds_and_go_before_the_controller() -> None:
    plan = plan_of("dev")
    crds, controller = release(plan, "karpenter-crd"), release(plan, "karpenter")
    for reg in plan.of_type(NODE_POOL) + plan.of_type(NODE_CLASS):
        # Created after the CRDs; destroyed before the controller, whose finalizers terminate the instances.
        assert crds.urn in reg.dependencies and controller.urn in reg.dependencies


# ---------------------------------------------------------------- Karpenter controller, IAM, interruption


def test_karpenter_charts_crds_first_controller_without_crds_on_system_nodes() -> None:
    plan = plan_of("dev")
    crds, controller = release(plan, "karpenter-crd"), release(plan, "karpenter")
    assert crds.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter-crd"
    assert controller.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert crds.inputs["version"] == controller.inputs["version"] == "1.14.1"
    assert controller.inputs["skipCrds"] is True and crds.urn in controller.dependencies
    assert controller.inputs["namespace"] == "kube-system"
    values = controller.inputs["values"]
    assert values["replicas"] == 2 and values["podDisruptionBudget"]["maxUnavailable"] == 1
    assert values["nodeSelector"]["ml-platform.io/role"] == "system"


def test_controller_identity_through_pod_identity_matches_the_chart_service_account() -> None:
    plan = plan_of("dev")
    associations = plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    # the others are the teams' checkpoint identities, in their namespaces
    [association] = [a for a in associations if a.inputs["namespace"] == "kube-system"]
    values = release(plan, "karpenter").inputs["values"]
    assert association.inputs["namespace"] == release(plan, "karpenter").inputs["namespace"]
    assert association.inputs["serviceAccount"] == values["serviceAccount"]["name"] == "karpenter"
    assert association.inputs["roleArn"] == "<karpenter-controller.arn>"
    # The controller waits for its identity, its policies and the node access entry.
    by_urn = {r.urn: r.type for r in plan.registrations}
    waits = {by_urn[d] for d in release(plan, "karpenter").dependencies}
    assert {
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "aws:eks/accessEntry:AccessEntry",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    } <= waits


def test_node_role_joins_through_an_ec2_linux_access_entry() -> None:
    [entry] = plan_of("dev").of_type("aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["type"] == "EC2_LINUX" and entry.inputs["principalArn"] == "<karpenter-node.arn>"


def test_interruption_queue_is_encrypted_and_fed_by_every_event_rule() -> None:
    plan = plan_of("dev")
    [queue] = plan.of_type("aws:sqs/queue:Queue")
    assert queue.inputs["sqsManagedSseEnabled"] is True and queue.inputs["messageRetentionSeconds"] == 300
    assert release(plan, "karpenter").inputs["values"]["settings"]["interruptionQueue"] == queue.inputs["name"]
    rules = {r.name: r for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")}
    patterns = {json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in rules.values()}
    assert patterns == {
        "AWS Health Event",
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "EC2 Capacity Reservation Instance Interruption Warning",
    }
    targets = plan.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert len(targets) == len(rules) >= 4
    for target in targets:
        assert target.inputs["arn"] == f"<{queue.name}.arn>"
        assert target.inputs["rule"] in {f"<{n}.name>" for n in rules}
    [policy] = plan.of_type("aws:sqs/queuePolicy:QueuePolicy")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert "events.amazonaws.com" in statements["EventBridgeWrite"]["Principal"]["Service"]
    assert statements["DenyHTTP"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


READ_ONLY = re.compile(r"^[a-z0-9-]+:(Describe|Get|List)[A-Za-z]*$")


def iam_statements(plan: PlanResult) -> list[dict[str, Any]]:
    documents = [json.loads(r.inputs["policy"]) for r in plan.of_type("aws:iam/policy:Policy")]
    return [s for d in documents for s in d["Statement"]]


@pytest.mark.parametrize("variant", ["karpenter", "cluster-autoscaler"])
def test_iam_policies_are_scoped(variant: str, ca_plan: PlanResult) -> None:
    statements = iam_statements(plan_of("dev") if variant == "karpenter" else ca_plan)
    assert statements
    for s in statements:
        assert s.get("Sid") and s["Effect"] == "Allow"
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        mutating = [a for a in actions if not READ_ONLY.match(a)]
        if "*" in resources:
            # "*" only for read-only calls, or for mutations fenced by a condition (tags, region).
            assert not mutating or s.get("Condition"), s["Sid"]
        for resource in resources:
            assert resource == "*" or resource.startswith("arn:aws:") or resource.startswith("<"), resource


def test_karpenter_ec2_mutations_are_fenced_to_this_cluster() -> None:
    statements = {s["Sid"]: s for s in iam_statements(plan_of("dev"))}
    for sid in ("AllowScopedEC2InstanceActionsWithTags", "AllowScopedResourceCreationTagging"):
        assert statements[sid]["Condition"]["StringEquals"]["aws:RequestTag/kubernetes.io/cluster/ml-dev"] == "owned"
    assert statements["AllowScopedDeletion"]["Condition"]["StringEquals"] == {
        "aws:ResourceTag/kubernetes.io/cluster/ml-dev": "owned"
    }
    assert statements["AllowPassingInstanceRole"]["Resource"] == "<karpenter-node.arn>"
    assert statements["AllowInterruptionQueueActions"]["Resource"] == "<karpenter-interruption.arn>"
    assert (
        statements["AllowAPIServerEndpointDiscovery"]["Resource"] == "arn:aws:eks:us-east-1:<account-id>:cluster/ml-dev"
    )
    assert statements["AllowRegionalReadActions"]["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}


# ---------------------------------------------------------------- cluster-autoscaler


def test_cluster_autoscaler_gpu_groups_scale_from_zero_with_node_template_tags(ca_plan: PlanResult) -> None:
    groups = {g.name: g.inputs for g in ca_plan.of_type("aws:eks/nodeGroup:NodeGroup")}
    for name in ("train-a100-spot", "train-a100-on-demand", "notebooks-spot", "notebooks-on-demand"):
        assert groups[name]["scalingConfig"]["minSize"] == 0
    tags: dict[str, dict[str, str]] = {}
    for tag in ca_plan.of_type("aws:autoscaling/tag:Tag"):
        tags.setdefault(tag.inputs["autoscalingGroupName"], {})[tag.inputs["tag"]["key"]] = tag.inputs["tag"]["value"]
        assert tag.inputs["tag"]["propagateAtLaunch"] is False
    template = "k8s.io/cluster-autoscaler/node-template"
    train = tags["<train-a100-spot.asg>"]
    assert train[f"{template}/label/k8s.amazonaws.com/accelerator"] == "a100-40gb"
    assert train[f"{template}/resources/nvidia.com/gpu"] == "8"
    assert train[f"{template}/taint/nvidia.com/gpu"] == "true:NoSchedule"
    assert train[f"{template}/label/{LABEL_POOL}"] == "train-a100"
    assert train[f"{template}/label/{LABEL_CAPACITY}"] == "spot"
    assert train[f"{template}/label/{LABEL_GPU}"] == "a100-40gb"
    # Time-slicing: 1 GPU x 4 replicas is what pods see.
    assert tags["<notebooks-on-demand.asg>"][f"{template}/resources/nvidia.com/gpu"] == "4"
    assert set(tags) == {f"<{g}.asg>" for g in groups if g != "system"}


def test_cluster_autoscaler_chart_values(ca_plan: PlanResult) -> None:
    chart = release(ca_plan, "cluster-autoscaler")
    assert chart.inputs["chart"] == "cluster-autoscaler" and chart.inputs["version"] == "9.59.0"
    assert chart.inputs["repositoryOpts"]["repo"] == "https://kubernetes.github.io/autoscaler"
    values = chart.inputs["values"]
    assert values["autoDiscovery"]["clusterName"] == "ml-dev" and values["awsRegion"] == "us-east-1"
    args = values["extraArgs"]
    assert args["scale-down-unneeded-time"] == "2m" and args["scale-down-delay-after-add"] == "2m"
    assert args["expander"] == "priority,least-waste" and args["balance-similar-node-groups"] is True
    priorities = values["expanderPriorities"]
    assert any(re.match(p, "eks-train-a100-spot-ab12cd3-0f1e2d3c") for p in priorities["100"])
    assert not any(re.match(p, "eks-train-a100-on-demand-ab12cd3-0f1e2d3c") for p in priorities["100"])
    assert any(re.match(p, "eks-train-a100-on-demand-ab12cd3-0f1e2d3c") for p in priorities["50"])
    associations = ca_plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    [association] = [a for a in associations if a.inputs["namespace"] == "kube-system"]
    assert association.inputs["serviceAccount"] == values["rbac"]["serviceAccount"]["name"]
    assert not ca_plan.of_type(NODE_POOL) and not ca_plan.of_type("aws:sqs/queue:Queue")


def test_cluster_autoscaler_resizes_only_groups_this_cluster_owns(ca_plan: PlanResult) -> None:
    statements = {s["Sid"]: s for s in iam_statements(ca_plan)}
    resize = statements["ResizeOwnedGroups"]
    assert resize["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/ml-dev": "owned"}}


# ---------------------------------------------------------------- GKE


def test_gke_gpu_pools_autoscale_from_zero_with_any_zone_and_a_profile() -> None:
    plan = plan_of("gke")
    cluster = plan.of_type("gcp:container/cluster:Cluster")[0].inputs
    assert cluster["clusterAutoscaling"]["autoscalingProfile"] == "OPTIMIZE_UTILIZATION"  # the gke stack is dev
    for pool in plan.of_type("gcp:container/nodePool:NodePool"):
        if pool.name.endswith("-system"):
            continue
        scaling = pool.inputs["autoscaling"]
        assert scaling["totalMinNodeCount"] == 0 and scaling["locationPolicy"] == "ANY"
        assert scaling["totalMaxNodeCount"] >= 1


# ---------------------------------------------------------------- pinned upstream data


def test_chart_versions_match_the_reference_table() -> None:
    text = (REFERENCE_DIR / "VERSIONS.md").read_text()
    for chart in CHARTS:
        row = next(
            line for line in text.splitlines() if line.startswith("|") and f"`{chart.name}`" in line.split("|")[2]
        )
        cells = [c.strip() for c in row.split("|")]
        assert chart.version.lstrip("v") == cells[4].lstrip("v"), chart.name
        assert chart.repository.split("//")[1] in cells[3], chart.name
        # The pinned chart as upstream published it (its version in git can lag: see VERSIONS.md on Karpenter).
        reference = REFERENCE_DIR / "chart-values" / f"{chart.name}-{chart.version}"
        assert yaml.safe_load((reference / "Chart.yaml").read_text())["name"] == chart.name
        assert (reference / "values.yaml").is_file()


def test_the_cluster_autoscaler_minor_is_the_one_the_pinned_chart_runs() -> None:
    """The config rule that matches cluster-autoscaler to the cluster's minor relies on this."""
    from components.versions import CLUSTER_AUTOSCALER_APP_MINOR

    reference = REFERENCE_DIR / "chart-values" / f"{CLUSTER_AUTOSCALER.name}-{CLUSTER_AUTOSCALER.version}"
    app_version = str(yaml.safe_load((reference / "Chart.yaml").read_text())["appVersion"])
    image_tag = str(yaml.safe_load((reference / "values.yaml").read_text())["image"]["tag"])
    assert app_version.startswith(f"{CLUSTER_AUTOSCALER_APP_MINOR}.")
    assert image_tag.startswith(f"v{CLUSTER_AUTOSCALER_APP_MINOR}.")


# The "Full Cluster Autoscaler Features Policy (Recommended)" of cluster-autoscaler/cloudprovider/aws/README.md
# (kubernetes/autoscaler, the chart's appVersion): read-only calls on *, resizing calls to be scoped by the user.
UPSTREAM_CA_READ = {
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
    "eks:DescribeNodegroup",
}
UPSTREAM_CA_WRITE = {"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"}
# Deliberate: DescribeTags (auto-discovery by tag on older ASG APIs; read-only).
CA_EXTRA_READ = {"autoscaling:DescribeTags"}


def test_cluster_autoscaler_policy_is_upstreams_with_resizing_scoped_to_this_cluster() -> None:
    from components.autoscaling.cluster_autoscaler import controller_policy

    read, write = json.loads(controller_policy("ml-dev"))["Statement"]
    assert set(read["Action"]) == UPSTREAM_CA_READ | CA_EXTRA_READ and read["Resource"] == "*"
    assert set(write["Action"]) == UPSTREAM_CA_WRITE
    # scoped to the ASGs EKS tags as owned by this cluster, not every ASG in the account
    assert write["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/ml-dev": "owned"}}
    assert len(controller_policy("ml-dev").replace(" ", "").replace("\n", "")) < 6144  # IAM's managed-policy limit


def test_cluster_autoscaler_flags_exist_in_the_pinned_chart(ca_plan: PlanResult) -> None:
    # extraArgs is free-form in the chart; its values.yaml lists the flags it documents (as comments).
    text = (REFERENCE_DIR / "chart-values" / "cluster-autoscaler-9.59.0" / "values.yaml").read_text()
    for flag in release(ca_plan, "cluster-autoscaler").inputs["values"]["extraArgs"]:
        assert re.search(rf"^\s*#?\s*{re.escape(flag)}:", text, re.MULTILINE), flag


def test_cluster_autoscaler_image_follows_the_cluster_minor(tmp_path: Path) -> None:
    def change(c: dict[str, Any]) -> None:
        c["ml-platform:autoscaler"] = "cluster-autoscaler"
        c["ml-platform:cluster"]["kubernetesVersion"] = "1.34"
        c["ml-platform:scaling"] = {"clusterAutoscalerVersion": "v1.34.2"}

    plan = plan_variant(tmp_path, "dev", change)
    assert release(plan, "cluster-autoscaler").inputs["values"]["image"] == {"tag": "v1.34.2"}


def test_bottlerocket_nodes_are_left_to_their_own_device_plugin_and_measured_by_dcgm_exporter(
    tmp_path: Path,
) -> None:
    """Bottlerocket's NVIDIA variants run their own device plugin on the host and ship the driver and toolkit: a
    second plugin on the same socket would fight it (eksctl's and Bottlerocket's docs), and the operator's validator
    does not find Bottlerocket's driver, so every operand is kept off and the dcgm-exporter chart measures them."""
    plan = plan_variant(tmp_path, "dev", bottlerocket)
    labels = objects(plan, NODE_POOL)["train-a100-spot"]["spec"]["template"]["metadata"]["labels"]
    assert labels["nvidia.com/gpu.deploy.operands"] == "false"
    [exporter] = [r for r in plan.of_type(RELEASE) if r.inputs["name"] == "dcgm-exporter"]
    assert redact(exporter.inputs["values"])["nodeSelector"] == {"nvidia.com/gpu.deploy.operands": "false"}
    from tools.invariants import PlanView, check_plan

    assert check_plan(PlanView.of(plan)) == []


def test_priority_patterns_do_not_match_another_groups_asg(tmp_path: Path) -> None:
    """Pool `train` (spot first) and pool `train-spot` (on-demand): `^eks-train-spot-` would also match the ASG of
    group train-spot-on-demand."""

    def pools(c: dict[str, Any]) -> None:
        c["ml-platform:autoscaler"] = "cluster-autoscaler"
        base = {"gpu": "a10g", "gpusPerNode": 1, "maxNodes": 1, "workload": "dev"}
        c["ml-platform:gpuPools"] = [
            {**base, "name": "train", "capacity": ["spot", "on-demand"]},
            {**base, "name": "train-spot", "capacity": "on-demand"},
        ]
        c["ml-platform:teams"] = []

    plan = plan_variant(tmp_path, "dev", pools)
    assert plan.error is None, plan.error
    priorities = redact(release(plan, "cluster-autoscaler").inputs["values"])["expanderPriorities"]
    # EKS names the ASG eks-<node group>-<uuid>; Pulumi names the node group <name>-<7 hex characters>.
    on_demand_asg = "eks-train-spot-on-demand-1a2b3c4-5e6f7a8b-1111-2222-3333-444455556666"
    assert not any(re.match(p, on_demand_asg) for p in priorities["100"])
    assert any(re.match(p, on_demand_asg) for p in priorities["50"])
    assert any(re.match(p, "eks-train-spot-9f8e7d6-5e6f7a8b-1111") for p in priorities["100"])


# ---------------------------------------------------------------- capacity already paid for (reserved)

RESERVATION = "cr-0123456789abcdef0"


def reserved_first(config: dict[str, Any]) -> None:
    train = next(p for p in config["ml-platform:gpuPools"] if p["name"] == "train-a100")
    train["capacity"] = ["reserved", "spot", "on-demand"]
    train["reservations"] = {"ids": [RESERVATION], "tags": {"purpose": "ml-training"}}


def test_karpenter_prefers_the_reservation_then_spot_then_on_demand(tmp_path: Path) -> None:
    plan = plan_variant(tmp_path, "dev", reserved_first)
    pools = objects(plan, NODE_POOL)
    weights = {name: pools[name]["spec"]["weight"] for name in pools if name.startswith("train-a100-")}
    assert weights == {"train-a100-reserved": 100, "train-a100-spot": 50, "train-a100-on-demand": 10}
    reserved = pools["train-a100-reserved"]
    assert requirement(reserved, "karpenter.sh/capacity-type")["values"] == ["reserved"]
    assert reserved["spec"]["template"]["metadata"]["labels"][LABEL_CAPACITY] == "reserved"
    node_class = objects(plan, NODE_CLASS)["train-a100"]
    assert node_class["spec"]["capacityReservationSelectorTerms"] == [
        {"id": RESERVATION},
        {"tags": {"purpose": "ml-training"}},
    ]
    # what the pinned CRDs accept (an id term may carry nothing else), and the chart keeps the feature on
    assert validate_custom_resource(node_class) == [] and validate_custom_resource(reserved) == []
    values = yaml.safe_load((REFERENCE_DIR / "chart-values" / "karpenter-1.14.1" / "values.yaml").read_text())
    assert values["settings"]["featureGates"]["reservedCapacity"] is True  # beta, on by default; we never turn it off
    ours = release(plan, "karpenter").inputs["values"].get("settings", {}).get("featureGates", {})
    assert ours.get("reservedCapacity", True) is True


def test_prods_always_on_mig_node_launches_into_its_reservation() -> None:
    plan = plan_of("prod")
    groups = {g.name: g for g in plan.of_type("aws:eks/nodeGroup:NodeGroup")}
    mig = groups["serve-mig-baseline"]
    assert mig.inputs["capacityType"] == "ON_DEMAND"  # a targeted ODCR runs on-demand instances
    assert mig.inputs["subnetIds"] == ["<ml-prod-private-us-west-2a.id>"]  # the reservation's AZ
    assert mig.inputs["updateConfig"]["updateStrategy"] == "MINIMAL"
    assert mig.inputs["labels"][LABEL_CAPACITY] == "reserved"
    [template] = [t for t in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate") if t.name == "serve-mig-baseline-lt"]
    target = template.inputs["capacityReservationSpecification"]["capacityReservationTarget"]
    assert target == {"capacityReservationId": "cr-0a1b2c3d4e5f67890"}
    others = [t for t in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate") if t.name != "serve-mig-baseline-lt"]
    assert others and all("capacityReservationSpecification" not in t.inputs for t in others)


def test_cluster_autoscaler_scales_the_reserved_group_first(tmp_path: Path) -> None:
    def change(config: dict[str, Any]) -> None:
        config["ml-platform:autoscaler"] = "cluster-autoscaler"
        reserved_first(config)
        config["ml-platform:gpuPools"][1]["reservations"] = {"ids": [RESERVATION], "availabilityZone": "us-east-1b"}

    plan = plan_variant(tmp_path, "dev", change)
    assert plan.error is None, plan.error
    groups = {g.name: g.inputs for g in plan.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert groups["train-a100-reserved"]["capacityType"] == "ON_DEMAND"
    # a reservation is zonal: its group launches in that AZ only, and replaces a node without a surge node
    assert groups["train-a100-reserved"]["subnetIds"] == ["<ml-dev-private-us-east-1b.id>"]
    assert groups["train-a100-reserved"]["updateConfig"] == {"maxUnavailable": 1, "updateStrategy": "MINIMAL"}
    assert (
        len(groups["train-a100-spot"]["subnetIds"]) == 3
        and "updateStrategy" not in groups["train-a100-spot"]["updateConfig"]
    )
    [template] = [
        t for t in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate") if t.name == "train-a100-reserved-lt"
    ]
    assert template.inputs["capacityReservationSpecification"] == {
        "capacityReservationTarget": {"capacityReservationId": RESERVATION}
    }
    priorities = (
        yaml.safe_load(release(plan, "cluster-autoscaler").inputs["values"]["expanderPriorities"])
        if isinstance(release(plan, "cluster-autoscaler").inputs["values"]["expanderPriorities"], str)
        else release(plan, "cluster-autoscaler").inputs["values"]["expanderPriorities"]
    )
    assert priorities["200"] == [r"^eks-train\-a100\-reserved-[0-9a-f]{7}-.*"]
    assert max(int(k) for k in priorities) == 200


def test_ec2_quotas_a_pool_needs() -> None:
    from components.config.loading import load_platform_config
    from components.gpu_pools import resolve_gpu_pools

    quotas = {p.name: p.ec2_quotas() for p in resolve_gpu_pools(load_platform_config(plan_of("prod").stack.config))}
    # p5.48xlarge: 192 vCPUs; train-h100 reaches 4 nodes of each capacity type
    assert quotas["train-h100"] == {"All P5 Spot Instance Requests": 768, "Running On-Demand P instances": 768}
    assert quotas["serve-mig"] == {"Running On-Demand P instances": 192}  # creating the reservation takes it
    assert quotas["serve-a100"] == {"Running On-Demand P instances": 2 * 96}
    dev = {p.name: p.ec2_quotas() for p in resolve_gpu_pools(load_platform_config(plan_of("dev").stack.config))}
    # g5: the largest allowed size (g5.4xlarge, 16 vCPUs) x 4 nodes
    assert dev["notebooks"] == {"All G and VT Spot Instance Requests": 64, "Running On-Demand G and VT instances": 64}
    assert dev["train-a100"] == {"All P4, P3 and P2 Spot Instance Requests": 192, "Running On-Demand P instances": 192}


def test_a_reservation_in_an_az_the_cluster_has_no_subnet_in(tmp_path: Path) -> None:
    def change(config: dict[str, Any]) -> None:
        mig = next(p for p in config["ml-platform:gpuPools"] if p["name"] == "serve-mig")
        mig["reservations"]["availabilityZone"] = "us-west-2d"

    plan = plan_variant(tmp_path, "prod", change)
    assert plan.error is not None
    assert plan.error.startswith("ml-platform:gpuPools[1].reservations.availabilityZone: got 'us-west-2d'")
    assert "us-west-2a, us-west-2b, us-west-2c" in plan.error
    assert not plan.of_type("aws:eks/nodeGroup:NodeGroup")


def test_existing_subnets_are_placed_by_the_az_ec2_reports(tmp_path: Path) -> None:
    def change(config: dict[str, Any]) -> None:
        subnets = ["subnet-0aaa", "subnet-0bbb", "subnet-0ccc"]
        config["ml-platform:cluster"]["vpc"] = {"existing": {"vpcId": "vpc-1", "privateSubnetIds": subnets}}
        config["ml-platform:cluster"].pop("apiAccess")

    plan = plan_variant(tmp_path, "prod", change)
    assert plan.error is None, plan.error
    lookups = [a["id"] for token, a in plan.invokes if token == "aws:ec2/getSubnet:getSubnet"]
    assert lookups == ["subnet-0aaa", "subnet-0bbb", "subnet-0ccc"]
    [mig] = [g for g in plan.of_type("aws:eks/nodeGroup:NodeGroup") if g.name == "serve-mig-baseline"]
    assert len(mig.inputs["subnetIds"]) == 1 and mig.inputs["subnetIds"][0] in lookups
