"""Managed node groups for EKS: the system group, and GPU groups when cluster-autoscaler drives scaling.

Builders return the keyword arguments of `aws.ec2.LaunchTemplate` / `aws.eks.NodeGroup` so tests can
check them without the runtime; every node gets IMDSv2 with hop limit 1 (pods cannot borrow the node
role through IMDS) and an encrypted gp3 root volume.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster.handle import ResolvedGpuPool
from components.config import CapacityType, SystemNodes
from vocabulary.labels import LABEL_ROLE

AL2023_STANDARD = "AL2023_x86_64_STANDARD"
# EKS-optimized AL2023 with the NVIDIA driver and container toolkit baked in.
AL2023_NVIDIA = "AL2023_x86_64_NVIDIA"
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
CAPACITY_TYPE = {"spot": "SPOT", "on-demand": "ON_DEMAND"}
TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}

IMDS_V2_HOP_LIMIT_1 = aws.ec2.LaunchTemplateMetadataOptionsArgs(
    http_endpoint="enabled",
    http_tokens="required",
    http_put_response_hop_limit=1,
    instance_metadata_tags="disabled",
)


def launch_template_args(name: str, disk_gib: int, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "name_prefix": f"{name}-",
        "description": f"ml-platform node group {name}: IMDSv2 (hop limit 1), encrypted gp3 root volume",
        "metadata_options": IMDS_V2_HOP_LIMIT_1,
        "block_device_mappings": [
            aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda",  # AL2023 root device
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=disk_gib,
                    volume_type="gp3",
                    encrypted="true",
                    delete_on_termination="true",
                ),
            )
        ],
        # Provider default_tags do not reach what an ASG launches: tag instances, volumes and ENIs here.
        "tag_specifications": [
            aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
            for kind in ("instance", "volume", "network-interface")
        ],
        "update_default_version": True,
    }


def system_node_group_args(system: SystemNodes) -> dict[str, Any]:
    return {
        "ami_type": AL2023_STANDARD,
        "capacity_type": "ON_DEMAND",  # controllers must not be interrupted by spot reclaims
        "instance_types": [system.instance_type],
        "labels": {LABEL_ROLE: "system"},
        "scaling_config": aws.eks.NodeGroupScalingConfigArgs(
            min_size=system.min_nodes, max_size=system.max_nodes, desired_size=system.min_nodes
        ),
        "update_config": aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
    }


def node_group_labels(pool: ResolvedGpuPool, capacity: CapacityType) -> dict[str, str]:
    """The portable labels plus cluster-autoscaler's GPU label (its scale-from-zero ASG tags repeat them)."""
    return {**pool.labels(capacity), ACCELERATOR_LABEL: pool.model.key}


def gpu_group_name(pool: ResolvedGpuPool, capacity: CapacityType) -> str:
    return f"{pool.name}-{capacity}"


def gpu_node_group_args(pool: ResolvedGpuPool, capacity: CapacityType) -> dict[str, Any]:
    """One managed node group per (pool, capacity type). With [spot, on-demand] the on-demand group is the
    fallback: it keeps min 0 and minNodes applies to the first-listed capacity type only."""
    first = pool.capacity_types[0] == capacity
    min_size = pool.config.min_nodes if first else 0
    return {
        "ami_type": AL2023_NVIDIA,
        "capacity_type": CAPACITY_TYPE[capacity],
        # One size per group: cluster-autoscaler assumes every node of a group has the same shape.
        "instance_types": [pool.shape.instance_type],
        # cluster-autoscaler's GPU label: until the device plugin reports nvidia.com/gpu, a node carrying it is
        # treated as still starting, not as a node without GPUs (which would trigger another scale-up).
        "labels": node_group_labels(pool, capacity),
        "taints": [
            aws.eks.NodeGroupTaintArgs(
                key=pool.taint.key, value=pool.taint.value, effect=TAINT_EFFECT[pool.taint.effect]
            )
        ],
        "scaling_config": aws.eks.NodeGroupScalingConfigArgs(
            min_size=min_size, max_size=pool.config.max_nodes, desired_size=min_size
        ),
        "update_config": aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
        "tags": {"ml-platform.io/pool": pool.name, "ml-platform.io/capacity": capacity},
    }


def baseline_node_group_args(pool: ResolvedGpuPool) -> dict[str, Any]:
    """A fixed-size group of minNodes on the pool's first capacity type: warm capacity under Karpenter, which
    has no minimum. Karpenter's NodePool for the same capacity type is limited to the remaining nodes."""
    args = gpu_node_group_args(pool, pool.capacity_types[0])
    size = pool.config.min_nodes
    args["scaling_config"] = aws.eks.NodeGroupScalingConfigArgs(min_size=size, max_size=size, desired_size=size)
    return args


def node_group(
    name: str,
    cluster_name: pulumi.Input[str],
    node_role_arn: pulumi.Input[str],
    subnet_ids: list[pulumi.Input[str]],
    args: dict[str, Any],
    disk_gib: int,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.eks.NodeGroup:
    """`name` is also the logical name: no cluster prefix (one cluster per stack), so the auto-named node
    group (name + 8 random characters) stays within EKS's 63-character limit for a 30-character pool."""
    node_tags = {**tags, "Name": f"{tags.get('ml-platform.io/cluster', 'eks')}-{name}", **args.get("tags", {})}
    template = aws.ec2.LaunchTemplate(f"{name}-lt", **launch_template_args(name, disk_gib, node_tags), opts=opts)
    return aws.eks.NodeGroup(
        name,
        cluster_name=cluster_name,
        node_role_arn=node_role_arn,
        subnet_ids=subnet_ids,
        launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=template.id, version=template.latest_version.apply(str)),
        **args,
        # The autoscaler owns the current size; Pulumi must not scale groups back on the next `up`.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=["scalingConfig.desiredSize"])),
    )
