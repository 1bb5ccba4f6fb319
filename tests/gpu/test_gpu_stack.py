"""The NVIDIA GPU stack per cloud and AMI family: what serves each pool's GPUs, the time-slicing and MIG configs
its nodes select, and the resource names pods request (NVIDIA's device-plugin docs and GKE's docs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config.gpu import GpuStackConfig
from components.config.loading import load_platform_config
from components.gpu.operator import mig_parted_config, operator_values
from components.gpu_pools import resolve_gpu_pools
from conftest import H100_MIG, plan_of, plan_variant, platform_config, with_api_path
from schemas import crd_schema_dir, validate_custom_resource
from tools.offline import PlanResult, redact

RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
OVERLAY = "kubernetes:karpenter.sh/v1alpha1:NodeOverlay"


def values(plan: PlanResult, chart: str) -> dict[str, Any]:
    [release] = [r for r in plan.of_type(RELEASE) if r.inputs["name"] == chart]
    return dict(redact(release.inputs["values"]))


def nodepool_labels(plan: PlanResult, name: str) -> dict[str, str]:
    [pool] = [r for r in plan.of_type(NODE_POOL) if r.inputs["metadata"]["name"] == name]
    return dict(pool.inputs["spec"]["template"]["metadata"]["labels"])


def pools(cloud: str, *specs: dict[str, Any], **stack: Any) -> dict[str, Any]:
    cluster = {
        "aws": {"cloud": "aws", "name": "ml", "region": "us-east-1"},
        "gcp": {"cloud": "gcp", "name": "ml", "region": "us-central1", "gcp": {"project": "ml-proj"}},
        "existing": {"cloud": "existing", "name": "ml", "existing": {"context": "kind-ml"}},
    }[cloud]
    return {p.name: p for p in resolve_gpu_pools(platform_config(cluster, specs, **stack))}


# ---------------------------------------------------------------- the operator per cloud


def test_eks_runs_the_operator_without_driver_or_toolkit() -> None:
    v = values(plan_of("prod"), "gpu-operator")
    # The EKS AL2023 NVIDIA and Bottlerocket NVIDIA AMIs ship both (NVIDIA: "pre-installed drivers and toolkit").
    assert v["driver"] == {"enabled": False} and v["toolkit"] == {"enabled": False}
    assert v["devicePlugin"]["enabled"] and v["gfd"]["enabled"] and v["nfd"]["enabled"]
    assert v["daemonsets"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert v["operator"]["nodeSelector"]["ml-platform.io/role"] == "system"
    assert v["node-feature-discovery"]["master"]["nodeSelector"]["ml-platform.io/role"] == "system"
    assert v["migManager"]["enabled"] and v["mig"]["strategy"] == "mixed"
    assert v["dcgmExporter"]["serviceMonitor"]["honorLabels"] is True


def test_existing_clusters_choose_driver_and_toolkit_and_eks_cannot(tmp_path: Path) -> None:
    pool = pools("existing", {"name": "ws", "gpu": "l4", "gpusPerNode": 1, "maxNodes": 1})
    on = operator_values(GpuStackConfig(driver=True, toolkit=True), tuple(pool.values()), "existing")
    assert on["driver"] == {"enabled": True} and on["toolkit"] == {"enabled": True}
    off = values(plan_of("local"), "gpu-operator")
    assert off["driver"] == {"enabled": False} and off["toolkit"] == {"enabled": False}
    bad = plan_variant(tmp_path, "prod", lambda c: c.update({"ml-platform:gpu": {"driver": True}}))
    assert bad.error is not None and "ml-platform:gpu.driver: got true; only used on existing clusters" in bad.error


def test_gke_has_no_operator_and_collects_dcgm_metrics_itself() -> None:
    plan = plan_of("gke")
    assert not [r for r in plan.of_type(RELEASE) if r.inputs["name"] in ("gpu-operator", "dcgm-exporter")]
    [cluster] = plan.of_type("gcp:container/cluster:Cluster")
    assert "DCGM" in cluster.inputs["monitoringConfig"]["enableComponents"]


def test_gke_can_export_dcgm_to_the_in_cluster_prometheus_instead(tmp_path: Path) -> None:
    plan = plan_variant(tmp_path, "gke", lambda c: c.update({"ml-platform:gpu": {"gkeMetrics": "dcgm-exporter"}}))
    v = values(plan, "dcgm-exporter")
    assert v["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert "DCGM_FI_DEV_THERMAL_VIOLATION" in v["customMetrics"]
    [cluster] = plan.of_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["monitoringConfig"]["enableComponents"] == ["SYSTEM_COMPONENTS"]


# ---------------------------------------------------------------- time-slicing


def test_each_time_sliced_pool_has_a_named_config_its_nodes_select() -> None:
    plan = plan_of("dev")
    configs = values(plan, "gpu-operator")["devicePlugin"]["config"]
    assert configs["name"] and configs["create"] is True and set(configs["data"]) == {"notebooks"}
    sharing = yaml.safe_load(configs["data"]["notebooks"])["sharing"]["timeSlicing"]
    # The device plugin's v1 config: every GPU shared 4 ways, still called nvidia.com/gpu.
    assert sharing == {
        "renameByDefault": False,
        "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}],
    }
    for capacity in ("spot", "on-demand"):
        assert nodepool_labels(plan, f"notebooks-{capacity}")["nvidia.com/device-plugin.config"] == "notebooks"
    assert "nvidia.com/device-plugin.config" not in nodepool_labels(plan, "train-a100-spot")


def test_gke_time_sharing_comes_from_the_node_pool() -> None:
    pool = pools(
        "gcp",
        {
            "name": "nb",
            "gpu": "l4",
            "gpusPerNode": 1,
            "maxNodes": 2,
            "sharing": {"mode": "time-slicing", "replicas": 4},
        },
    )["nb"]
    assert pool.device_plugin_config is None and pool.advertised == {"nvidia.com/gpu": 4}


def test_time_slicing_in_prod_or_on_inference_warns(tmp_path: Path) -> None:
    from components.config.rules import config_warnings

    dev = load_platform_config({k: v for k, v in plan_of("dev").stack.config.items()})
    assert not any("sharing" in w for w in config_warnings(dev))
    raw = dict(plan_of("dev").stack.config)
    raw["ml-platform:environment"] = "prod"
    cluster = {**json.loads(raw["ml-platform:cluster"]), "publicAccessCidrs": None}
    raw["ml-platform:cluster"] = json.dumps(with_api_path(cluster, "prod"))
    raw["ml-platform:scaling"] = json.dumps({"amiVersion": "v20260714"})
    [warning] = config_warnings(load_platform_config(raw))
    assert warning.startswith("ml-platform:gpuPools[0].sharing.mode: time-slicing in a production stack")


# ---------------------------------------------------------------- MIG


def test_mig_pools_select_a_layout_the_mig_manager_has() -> None:
    plan = plan_of("prod")
    labels = {r.name: r.inputs["labels"] for r in plan.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert labels["serve-mig-baseline"]["nvidia.com/mig.config"] == "all-1g.10gb"
    config = yaml.safe_load(values(plan, "gpu-operator")["migManager"]["config"]["data"]["config.yaml"])
    layouts = config["mig-configs"]
    assert set(layouts) == {"all-disabled", "all-1g.10gb"}
    # NVIDIA's device id of the H100 SXM5 (p5), and 7 slices of 1g.10gb per GPU.
    [entry] = layouts["all-1g.10gb"]
    assert "0x233010DE" in entry["device-filter"] and entry["mig-devices"] == {"1g.10gb": 7}


def test_one_layout_name_splits_each_gpu_model_its_own_way() -> None:
    resolved = pools(
        "existing",
        {**H100_MIG, "name": "h100"},
        {**H100_MIG, "name": "a100", "gpu": "a100-40gb", "sharing": {"mode": "mig", "profile": "1g.10gb"}},
    )
    entries = mig_parted_config(tuple(resolved.values()))["mig-configs"]["all-1g.10gb"]
    by_filter = {e["device-filter"][0]: e["mig-devices"] for e in entries}
    assert by_filter == {"0x233010DE": {"1g.10gb": 7}, "0x20B010DE": {"1g.10gb": 4}}


@pytest.mark.parametrize(
    ("cloud", "strategy", "profile", "advertised"),
    [
        ("aws", "mixed", "1g.10gb", {"nvidia.com/mig-1g.10gb": 56}),
        ("aws", "single", "1g.10gb", {"nvidia.com/gpu": 56}),
        ("aws", "mixed", "1g.10gb+me", {"nvidia.com/mig-1g.10gb.me": 8}),
        ("gcp", "mixed", "1g.10gb", {"nvidia.com/gpu": 56}),  # GKE advertises partitions as nvidia.com/gpu
    ],
)
def test_resource_names_follow_the_mig_strategy_and_cloud(
    cloud: str, strategy: str, profile: str, advertised: dict[str, int]
) -> None:
    spec = {**H100_MIG, "sharing": {"mode": "mig", "profile": profile}}
    if cloud == "gcp":
        spec["capacity"] = "spot"  # a3-highgpu-8g
    [pool] = pools(cloud, spec, gpu={"migStrategy": strategy}).values()
    assert pool.advertised == advertised


def test_custom_mig_layouts_come_from_the_stack_and_must_fit_the_gpu(tmp_path: Path) -> None:
    layout = {"balanced": {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}}
    [pool] = pools(
        "existing", {**H100_MIG, "sharing": {"mode": "mig", "config": "balanced"}}, gpu={"migConfigs": layout}
    ).values()
    assert pool.mig_config == "balanced"
    assert pool.advertised == {
        "nvidia.com/mig-3g.40gb": 8,
        "nvidia.com/mig-2g.20gb": 8,
        "nvidia.com/mig-1g.10gb": 16,
    }
    too_big = {"huge": {"7g.80gb": 1, "1g.10gb": 1}}
    with pytest.raises(Exception, match=r"ml-platform:gpu.migConfigs.huge: .*needs 8 compute and 9 memory slices"):
        pools("existing", {**H100_MIG, "sharing": {"mode": "mig", "config": "huge"}}, gpu={"migConfigs": too_big})
    with pytest.raises(Exception, match=r"ml-platform:gpu.migConfigs.balanced: .*one profile per layout"):
        pools(
            "existing",
            {**H100_MIG, "sharing": {"mode": "mig", "config": "balanced"}},
            gpu={"migConfigs": layout, "migStrategy": "single"},
        )


# ---------------------------------------------------------------- MIG pools that scale from zero (NodeOverlay)


def overlay(c: dict[str, Any]) -> None:
    c.setdefault("ml-platform:scaling", {})["nodeOverlay"] = True
    mig = next(p for p in c["ml-platform:gpuPools"] if p["name"] == "serve-mig")
    mig["minNodes"] = 0


def test_node_overlay_lets_a_mig_pool_scale_from_zero(tmp_path: Path) -> None:
    plan = plan_variant(tmp_path, "prod", overlay)
    assert plan.error is None, plan.error
    [o] = plan.of_type(OVERLAY)
    spec = o.inputs["spec"]
    assert spec["requirements"] == [
        {"key": "karpenter.sh/nodepool", "operator": "In", "values": ["serve-mig-reserved"]}
    ]
    # Under the mixed strategy a partitioned node advertises no whole GPU.
    assert spec["capacity"] == {"nvidia.com/mig-1g.10gb": "56", "nvidia.com/gpu": "0"}
    assert nodepool_labels(plan, "serve-mig-reserved")["nvidia.com/mig.config"] == "all-1g.10gb"
    assert values(plan, "karpenter")["settings"]["featureGates"] == {"nodeOverlay": True}
    assert not [r for r in plan.of_type("aws:eks/nodeGroup:NodeGroup") if r.name.startswith("serve-mig")]
    if crd_schema_dir() is not None:
        assert (
            validate_custom_resource(
                dict(redact(o.inputs)) | {"apiVersion": "karpenter.sh/v1alpha1", "kind": "NodeOverlay"}
            )
            == []
        )


def test_without_node_overlay_a_mig_pool_stays_a_fixed_group(tmp_path: Path) -> None:
    def scale_to_zero(c: dict[str, Any]) -> None:
        next(p for p in c["ml-platform:gpuPools"] if p["name"] == "serve-mig")["minNodes"] = 0

    plan = plan_variant(tmp_path, "prod", scale_to_zero)
    assert plan.error is not None and "Karpenter cannot plan for MIG slices" in plan.error


def test_node_overlay_makes_karpenter_see_time_sliced_gpus(tmp_path: Path) -> None:
    """Without it Karpenter sees one GPU on a g5.2xlarge and launches a node per notebook pod."""
    plan = plan_variant(tmp_path, "dev", lambda c: c.update({"ml-platform:scaling": {"nodeOverlay": True}}))
    capacity = {o.inputs["metadata"]["name"]: o.inputs["spec"]["capacity"] for o in plan.of_type(OVERLAY)}
    assert capacity == {"notebooks-spot": {"nvidia.com/gpu": "4"}, "notebooks-on-demand": {"nvidia.com/gpu": "4"}}


def test_mig_groups_under_cluster_autoscaler_offer_no_whole_gpus(tmp_path: Path) -> None:
    """cluster-autoscaler takes nvidia.com/gpu from the instance type unless a tag overrides it, and counts a node
    with its GPU label but no nvidia.com/gpu as never ready (kubernetes/autoscaler#8095)."""
    from components.autoscaling.cluster_autoscaler import node_template_tags
    from components.cluster.eks_nodes import node_group_labels

    [pool] = pools("aws", {**H100_MIG, "minNodes": 0, "maxNodes": 2}, autoscaler="cluster-autoscaler").values()
    tags = node_template_tags(pool, "on-demand")
    prefix = "k8s.io/cluster-autoscaler/node-template/resources/"
    assert tags[prefix + "nvidia.com/mig-1g.10gb"] == "56" and tags[prefix + "nvidia.com/gpu"] == "0"
    assert "k8s.amazonaws.com/accelerator" not in node_group_labels(pool, "on-demand")
    [whole] = pools("aws", {**H100_MIG, "sharing": {"mode": "none"}}, autoscaler="cluster-autoscaler").values()
    assert node_group_labels(whole, "on-demand")["k8s.amazonaws.com/accelerator"] == "h100-80gb"


def test_the_mig_manager_reboots_cloud_nodes_only() -> None:
    eks = values(plan_of("prod"), "gpu-operator")["migManager"]["env"]
    assert {"name": "WITH_REBOOT", "value": "true"} in eks
    local = values(plan_of("local"), "gpu-operator")["migManager"]["env"]
    assert {"name": "WITH_REBOOT", "value": "false"} in local
