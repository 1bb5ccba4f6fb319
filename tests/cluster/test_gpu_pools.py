"""GPU pool facts, derived once (components/gpu_pools.py): the groups that hold each pool's nodes under every
cloud and autoscaler, their sizes, and one cost-tag scheme on both clouds. The facts are checked against
hand-written expectations from docs/autoscaling.md; the plans of every stack are then checked to carry exactly
the facts (wiring), and prod's against a hand-written table."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from components.config.loading import load_platform_config
from components.gpu_pools import CapacityGroup, ResolvedGpuPool, resolve_gpu_pools
from conftest import STACKS, plan_of, platform_config
from tools.offline import PlanResult

AWS = {"cloud": "aws", "name": "ml", "region": "us-east-1"}
GCP = {"cloud": "gcp", "name": "ml", "region": "us-central1", "gcp": {"project": "ml-proj"}}
EXISTING = {"cloud": "existing", "name": "ml", "existing": {"context": "kind-ml"}}
TRAIN = {"name": "train", "gpu": "h100-80gb", "gpusPerNode": 8, "capacity": ["spot", "on-demand"]}


def pools(cluster: dict[str, Any], *pool_list: dict[str, Any], **stack: Any) -> dict[str, ResolvedGpuPool]:
    return {p.name: p for p in resolve_gpu_pools(platform_config(cluster, pool_list, **stack))}


def test_karpenter_keeps_min_nodes_in_a_fixed_group_and_caps_the_preferred_nodepool_at_the_rest() -> None:
    [pool] = pools(AWS, {**TRAIN, "minNodes": 1, "maxNodes": 4}).values()
    assert pool.node_groups == (CapacityGroup("train-baseline", "spot", 1, 1),)
    # maxNodes caps each capacity type: the baseline node counts against the spot NodePool only.
    assert pool.karpenter_node_pools == (
        CapacityGroup("train-spot", "spot", 0, 3),
        CapacityGroup("train-on-demand", "on-demand", 0, 4),
    )


def test_a_pool_that_scales_to_zero_has_no_managed_group_under_karpenter() -> None:
    [pool] = pools(AWS, {**TRAIN, "maxNodes": 2}).values()
    assert pool.node_groups == ()
    assert [g.name for g in pool.karpenter_node_pools] == ["train-spot", "train-on-demand"]


def test_a_nodepool_with_no_room_left_is_not_created() -> None:
    [pool] = pools(AWS, {**TRAIN, "capacity": "on-demand", "minNodes": 2, "maxNodes": 2}).values()
    assert pool.node_groups == (CapacityGroup("train-baseline", "on-demand", 2, 2),)
    assert pool.karpenter_node_pools == ()


def test_a_mig_pool_under_karpenter_is_a_fixed_group_with_no_nodepool() -> None:
    mig = {
        **TRAIN,
        "capacity": "on-demand",
        "minNodes": 1,
        "maxNodes": 1,
        "sharing": {"mode": "mig", "profile": "1g.10gb"},
    }
    [pool] = pools(AWS, mig).values()
    assert pool.fixed_group
    assert pool.node_groups == (CapacityGroup("train-baseline", "on-demand", 1, 1),)
    assert pool.karpenter_node_pools == ()
    assert (pool.gpu_resource, pool.allocatable_per_node) == ("nvidia.com/mig-1g.10gb", 56)
    # Under cluster-autoscaler a MIG pool scales like any other.
    [scaled] = pools(AWS, {**mig, "minNodes": 0, "maxNodes": 3}, autoscaler="cluster-autoscaler").values()
    assert not scaled.fixed_group and scaled.node_groups == (CapacityGroup("train-on-demand", "on-demand", 0, 3),)


@pytest.mark.parametrize(("cluster", "autoscaler"), [(AWS, "cluster-autoscaler"), (GCP, None)])
def test_one_group_per_capacity_type_with_min_nodes_on_the_preferred_one(
    cluster: dict[str, Any], autoscaler: str | None
) -> None:
    pool_spec = {**TRAIN, "minNodes": 1, "maxNodes": 4}
    stack = {"autoscaler": autoscaler} if autoscaler else {}
    [pool] = pools(cluster, pool_spec, **stack).values()
    assert pool.node_groups == (
        CapacityGroup("train-spot", "spot", 1, 4),
        CapacityGroup("train-on-demand", "on-demand", 0, 4),  # the fallback starts at zero
    )
    assert pool.karpenter_node_pools == ()


def test_existing_clusters_bring_their_own_nodes() -> None:
    [pool] = pools(EXISTING, {"name": "ws", "gpu": "l4", "gpusPerNode": 1, "maxNodes": 1}).values()
    assert pool.node_groups == () and pool.karpenter_node_pools == ()
    assert pool.summary()["instanceType"] == "existing nodes"


def test_time_slicing_multiplies_what_a_node_advertises_not_the_cost_ceiling() -> None:
    spec = {
        "name": "nb",
        "gpu": "a10g",
        "gpusPerNode": 4,
        "maxNodes": 3,
        "sharing": {"mode": "time-slicing", "replicas": 4},
    }
    [pool] = pools(AWS, spec).values()
    assert (pool.gpu_resource, pool.allocatable_per_node, pool.max_gpus) == ("nvidia.com/gpu", 16, 12)


# ---------------------------------------------------------------- cost tags: one scheme on both clouds

TEAMS = [{"name": "vision"}, {"name": "nlp", "pools": ["train"]}, {"name": "serving", "pools": ["serve"]}]
SERVE = {"name": "serve", "gpu": "l4", "gpusPerNode": 1, "maxNodes": 1}


def test_the_team_tag_names_the_only_team_a_pool_serves() -> None:
    resolved = pools(AWS, {**TRAIN, "maxNodes": 1}, SERVE, teams=[{"name": "nlp", "pools": ["train"]}])
    assert resolved["train"].cost_tags()["ml-platform-team"] == "nlp"
    assert resolved["serve"].cost_tags()["ml-platform-team"] == "shared"  # nobody in particular
    # A team without `pools` may use every pool: train now has two teams.
    resolved = pools(AWS, {**TRAIN, "maxNodes": 1}, SERVE, teams=TEAMS)
    assert (
        resolved["train"].teams == ("vision", "nlp") and resolved["train"].cost_tags()["ml-platform-team"] == "shared"
    )


def test_cost_tags_are_the_same_keys_on_both_clouds_and_valid_gcp_labels() -> None:
    spec = {**TRAIN, "maxNodes": 1}
    aws_tags = pools({**AWS, "tags": {"cost-center": "ml"}}, spec)["train"].cost_tags("spot")
    gcp_tags = pools({**GCP, "tags": {"cost-center": "ml"}}, {**spec, "gpu": "l4", "gpusPerNode": 1})[
        "train"
    ].cost_tags("spot")
    assert (
        aws_tags
        == gcp_tags
        == {
            "cost-center": "ml",
            "managed-by": "ml-platform",
            "ml-platform-cluster": "ml",
            "ml-platform-environment": "dev",
            "ml-platform-pool": "train",
            "ml-platform-team": "shared",
            "ml-platform-capacity": "spot",
        }
    )
    # GCP label keys: lowercase letters, digits, '_' and '-', starting with a letter, at most 63 characters.
    assert all(re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key) for key in aws_tags)


PLATFORM_KEYS = {"managed-by", "ml-platform-cluster", "ml-platform-environment"}
POOL_KEYS = PLATFORM_KEYS | {"ml-platform-pool", "ml-platform-team"}


def cloud_tags(plan: PlanResult) -> list[tuple[str, dict[str, str], bool]]:
    """(what, tags, whether it makes a pool's nodes) of everything a stack tags for cost."""
    found: list[tuple[str, dict[str, str], bool]] = []
    for r in plan.registrations:
        if r.type == "pulumi:providers:aws":
            found.append((r.name, json.loads(r.inputs["defaultTags"])["tags"], False))
        elif r.type == "pulumi:providers:gcp":
            found.append((r.name, json.loads(r.inputs["defaultLabels"]), False))
        elif r.type == "aws:ec2/launchTemplate:LaunchTemplate":
            found += [(r.name, spec["tags"], r.name != "system-lt") for spec in r.inputs["tagSpecifications"]]
        elif r.type == "gcp:container/nodePool:NodePool" and r.inputs["nodeConfig"].get("guestAccelerators"):
            found.append((r.name, r.inputs["nodeConfig"]["resourceLabels"], True))
        elif r.type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass":
            found.append((r.name, r.inputs["spec"]["tags"], True))
    return found


@pytest.mark.parametrize("stack", [s for s in STACKS if s != "local"])
def test_every_stack_tags_its_cloud_resources_with_the_one_scheme(stack: str) -> None:
    found = cloud_tags(plan_of(stack))
    assert any(makes_nodes for _, _, makes_nodes in found)
    for what, tags, makes_nodes in found:
        assert (POOL_KEYS if makes_nodes else PLATFORM_KEYS) <= set(tags), what
        assert not any(key.startswith("ml-platform.io/") for key in tags), what  # the old AWS-only spelling


# ---------------------------------------------------------------- the plans carry exactly the pool facts


@pytest.mark.parametrize("stack", STACKS)
def test_every_pool_group_in_the_facts_is_in_the_plan_with_its_size_and_labels(stack: str) -> None:
    plan = plan_of(stack)
    config = load_platform_config(plan.stack.config)
    resolved = resolve_gpu_pools(config)
    node_groups = {r.name: r.inputs for r in plan.of_type("aws:eks/nodeGroup:NodeGroup")}
    gke_pools = {r.inputs["name"]: r.inputs for r in plan.of_type("gcp:container/nodePool:NodePool")}
    nodepools = {
        r.inputs["metadata"]["name"]: r.inputs["spec"] for r in plan.of_type("kubernetes:karpenter.sh/v1:NodePool")
    }
    expected_groups, expected_nodepools = set(), set()
    for pool in resolved:
        for group in pool.node_groups:
            expected_groups.add(group.name)
            if pool.cloud == "aws":
                scaling = node_groups[group.name]["scalingConfig"]
                assert (scaling["minSize"], scaling["maxSize"]) == (group.min_nodes, group.max_nodes)
                labels = node_groups[group.name]["labels"]
            else:
                scaling = gke_pools[group.name]["autoscaling"]
                assert (scaling["totalMinNodeCount"], scaling["totalMaxNodeCount"]) == (
                    group.min_nodes,
                    group.max_nodes,
                )
                labels = gke_pools[group.name]["nodeConfig"]["labels"]
            assert labels["ml-platform.io/pool"] == pool.name and labels["ml-platform.io/capacity"] == group.capacity
        for group in pool.karpenter_node_pools:
            expected_nodepools.add(group.name)
            spec = nodepools[group.name]
            assert spec["limits"]["nodes"] == str(group.max_nodes)
            assert spec["template"]["metadata"]["labels"]["ml-platform.io/capacity"] == group.capacity
    groups = node_groups if config.cluster.cloud == "aws" else gke_pools
    assert set(groups) - {"system"} == expected_groups
    assert set(nodepools) - {"cpu"} == expected_nodepools


def test_prod_plans_the_groups_the_docs_describe() -> None:
    """prod: train-h100 scales 0..4 per capacity type on Karpenter, serve-mig is one always-on MIG node (a fixed
    group, no NodePool), serve-a100 scales 0..2 on demand."""
    plan = plan_of("prod")
    node_groups = {
        r.name: (r.inputs["capacityType"], r.inputs["scalingConfig"]["minSize"], r.inputs["scalingConfig"]["maxSize"])
        for r in plan.of_type("aws:eks/nodeGroup:NodeGroup")
    }
    assert node_groups == {"system": ("ON_DEMAND", 3, 6), "serve-mig-baseline": ("ON_DEMAND", 1, 1)}
    nodepools = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]["limits"].get("nodes")
        for r in plan.of_type("kubernetes:karpenter.sh/v1:NodePool")
    }
    assert nodepools == {"train-h100-spot": "4", "train-h100-on-demand": "4", "serve-a100-on-demand": "2", "cpu": None}
