"""Managed node groups for EKS: the system group, and GPU groups when cluster-autoscaler drives scaling.

Builders return the keyword arguments of `aws.ec2.LaunchTemplate` / `aws.eks.NodeGroup` so tests can
check them without the runtime; every node gets IMDSv2 with hop limit 1 (pods cannot borrow the node
role through IMDS) and an encrypted gp3 root volume.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config.base import CapacityType
from components.config.cluster import SystemNodes
from components.gpu_pools import CapacityGroup, ResolvedGpuPool
from vocabulary.labels import LABEL_ROLE
from vocabulary.resources import GPU_RESOURCE

AL2023_STANDARD = "AL2023_x86_64_STANDARD"
# EKS-optimized AL2023 with the NVIDIA driver and container toolkit baked in.
AL2023_NVIDIA = "AL2023_x86_64_NVIDIA"
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
# Instances launched into a targeted On-Demand Capacity Reservation are on-demand instances.
CAPACITY_TYPE = {"reserved": "ON_DEMAND", "spot": "SPOT", "on-demand": "ON_DEMAND"}
TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}

IMDS_V2_HOP_LIMIT_1 = aws.ec2.LaunchTemplateMetadataOptionsArgs(
    http_endpoint="enabled",
    http_tokens="required",
    http_put_response_hop_limit=1,
    instance_metadata_tags="disabled",
)


def launch_template_args(
    name: str, disk_gib: int, tags: dict[str, str], reservation: str | None = None
) -> dict[str, Any]:
    args: dict[str, Any] = {
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
    if reservation is not None:
        # Launch only into this reservation (capacity already paid for), not into on-demand capacity beside it.
        args["capacity_reservation_specification"] = aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
            capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
                capacity_reservation_id=reservation
            )
        )
    return args


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
    """The pool's node labels on the AL2023 NVIDIA AMI (the GPU Operator serves its GPUs) plus cluster-autoscaler's
    GPU label (its scale-from-zero ASG tags repeat them). Not on nodes that advertise no whole GPU (MIG, mixed
    strategy): cluster-autoscaler would count them as GPU nodes that never become ready (kubernetes/autoscaler#8095)."""
    labels = pool.node_labels(capacity, "operator")
    if GPU_RESOURCE in pool.advertised:
        labels[ACCELERATOR_LABEL] = pool.model.key
    return labels


def gpu_node_group_args(pool: ResolvedGpuPool, group: CapacityGroup) -> dict[str, Any]:
    """A managed node group of one capacity type of a pool, sized as the pool's facts say: one per capacity type
    under cluster-autoscaler (the fallback starting at 0), a fixed baseline group under Karpenter."""
    capacity = group.capacity
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
            min_size=group.min_nodes, max_size=group.max_nodes, desired_size=group.min_nodes
        ),
        # A reservation has no room for the surge node the default update launches first: MINIMAL replaces a node
        # after draining it (EKS's strategy for capacity reservations).
        "update_config": aws.eks.NodeGroupUpdateConfigArgs(
            max_unavailable=1, update_strategy="MINIMAL" if pool.reservation_target(capacity) else None
        ),
        # The group resource itself; provider default tags add the stack's, the launch template tags the nodes.
        "tags": {k: v for k, v in pool.cost_tags(capacity).items() if k not in pool.platform.cost_tags},
    }


@dataclass(frozen=True)
class NodeGroupPlacement:
    """Where every managed node group of the cluster goes: its cluster, node role and subnets."""

    cluster: str  # the cluster's name, for the nodes' Name tag
    cluster_name: pulumi.Input[str]  # the EKS cluster resource's name (an output: groups wait for the cluster)
    node_role_arn: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    # The private subnet of each AZ, for groups bound to one AZ (a capacity reservation is zonal); every zone a
    # reservation names is among them (eks.reservation_zones checks that before anything is created).
    subnets_by_zone: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


def node_group(
    name: str,
    placement: NodeGroupPlacement,
    args: dict[str, Any],
    disk_gib: int,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
    reservation: str | None = None,
    subnet_ids: list[pulumi.Input[str]] | None = None,
) -> aws.eks.NodeGroup:
    """`name` is also the logical name: no cluster prefix (one cluster per stack), so the auto-named node
    group (name + 8 random characters) stays within EKS's 63-character limit for a 30-character pool.
    `tags` go on the nodes, their volumes and network interfaces (through the launch template)."""
    node_tags = {**tags, "Name": f"{placement.cluster}-{name}"}
    template = aws.ec2.LaunchTemplate(
        f"{name}-lt", **launch_template_args(name, disk_gib, node_tags, reservation), opts=opts
    )
    return aws.eks.NodeGroup(
        name,
        cluster_name=placement.cluster_name,
        node_role_arn=placement.node_role_arn,
        subnet_ids=subnet_ids if subnet_ids is not None else placement.subnet_ids,
        launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=template.id, version=template.latest_version.apply(str)),
        **args,
        # The autoscaler owns the current size; Pulumi must not scale groups back on the next `up`.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=["scalingConfig.desiredSize"])),
    )


def gpu_node_groups(
    pools: tuple[ResolvedGpuPool, ...], placement: NodeGroupPlacement, opts: pulumi.ResourceOptions
) -> tuple[tuple[ResolvedGpuPool, CapacityGroup, aws.eks.NodeGroup], ...]:
    """The managed node groups of every GPU pool (`ResolvedGpuPool.node_groups`); a group launching into a capacity
    reservation uses the reservation's AZ only."""
    groups = []
    for pool in pools:
        for group in pool.node_groups:
            target = pool.reservation_target(group.capacity)
            reservation, subnets = (target[0], [placement.subnets_by_zone[target[1]]]) if target else (None, None)
            args = gpu_node_group_args(pool, group)
            tags = pool.cost_tags(group.capacity)
            created = node_group(group.name, placement, args, pool.config.disk_gib, tags, opts, reservation, subnets)
            groups.append((pool, group, created))
    return tuple(groups)
