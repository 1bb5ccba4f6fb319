"""`KarpenterNodePools`: one EC2NodeClass and one NodePool per capacity type of every GPU pool, plus a CPU pool.

Why a NodePool per capacity type: every GPU node carries a correct `ml-platform.io/capacity` label, and a
template label is static. With [spot, on-demand] the spot NodePool has the higher weight, so Karpenter tries
spot first and falls back to on-demand when spot capacity is unavailable.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.autoscaling.karpenter_release import KarpenterRelease
from components.cluster.handle import ClusterHandle, aws_info
from components.config.gpu_pools import Reservations
from components.config.scaling import CPU_POOL_NAME, ScalingConfig
from components.gpu_pools import CapacityGroup, ResolvedGpuPool
from components.kube import register_all
from vocabulary.labels import CPU_WORKER_ROLE, LABEL_ROLE
from vocabulary.resources import GPU_RESOURCE

NODE_CLASS_GROUP = "karpenter.k8s.aws"
# NodePool weights by the capacity type's place in the pool's preference order (reserved, spot, on-demand).
WEIGHTS = (100, 50, 10)


def node_class_ref(name: str) -> dict[str, str]:
    return {"group": NODE_CLASS_GROUP, "kind": "EC2NodeClass", "name": name}


def ec2_node_class(
    name: str,
    discovery_tag: dict[str, str],
    role: Any,
    scaling: ScalingConfig,
    disk_gib: int,
    local_nvme: bool,
    tags: dict[str, str],
    reservations: Reservations | None = None,
) -> dict[str, Any]:
    discovery = [{"tags": dict(discovery_tag)}]
    ebs = {"volumeSize": f"{disk_gib}Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}
    if scaling.ami_family == "bottlerocket":
        # Bottlerocket: a small OS volume, images and pods on the data volume.
        devices = [
            {"deviceName": "/dev/xvda", "ebs": {**ebs, "volumeSize": "4Gi"}},
            {"deviceName": "/dev/xvdb", "rootVolume": True, "ebs": ebs},
        ]
    else:
        devices = [{"deviceName": "/dev/xvda", "rootVolume": True, "ebs": ebs}]
    spec: dict[str, Any] = {
        "role": role,
        "amiSelectorTerms": [{"alias": f"{scaling.ami_family}@{scaling.ami_version}"}],
        "subnetSelectorTerms": discovery,
        "securityGroupSelectorTerms": discovery,
        "blockDeviceMappings": devices,
        # Pods cannot borrow the node role through IMDS.
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "tags": tags,
    }
    if reservations is not None:
        # The reservations `reserved` NodePools launch into (Karpenter's reservedCapacity feature, on by default).
        terms: list[dict[str, Any]] = [{"id": rid} for rid in reservations.ids]
        if reservations.tags:
            terms.append({"tags": dict(reservations.tags)})
        spec["capacityReservationSelectorTerms"] = terms
    if local_nvme:
        # Striped local NVMe for container images and ephemeral storage: fast pulls of 10+ GB images.
        spec["instanceStorePolicy"] = "RAID0"
    return {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": name}, "spec": spec}


def _disruption(workload: str, consolidate_after: str) -> dict[str, Any]:
    if workload == "training":
        # Never consolidate a node under a running job; when nodes do go, one at a time. A new AMI (drift) must
        # not drain a node under a job either: drifted training nodes are replaced once they are empty.
        return {
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": consolidate_after,
            "budgets": [{"nodes": "0", "reasons": ["Drifted"]}, {"nodes": "1"}],
        }
    return {
        "consolidationPolicy": "WhenEmptyOrUnderutilized",
        "consolidateAfter": consolidate_after,
        "budgets": [{"nodes": "10%"}],
    }


def gpu_node_pool(pool: ResolvedGpuPool, group: CapacityGroup, scaling: ScalingConfig) -> dict[str, Any]:
    """A NodePool of one capacity type of a pool (`ResolvedGpuPool.karpenter_node_pools`)."""
    capacity, nodes = group.capacity, group.max_nodes
    vcpus, memory = pool.shape.largest()
    spec: dict[str, Any] = {
        "template": {
            "metadata": {"labels": pool.node_labels(capacity, pool.gpu_stack(karpenter=True))},
            "spec": {
                "nodeClassRef": node_class_ref(pool.name),
                "requirements": [
                    {
                        "key": "node.kubernetes.io/instance-type",
                        "operator": "In",
                        "values": list(pool.shape.instance_types),
                    },
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [capacity]},
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                ],
                "taints": [pool.taint.as_k8s()],
                "expireAfter": scaling.expire_after,
                # Bounds how long karpenter.sh/do-not-disrupt can hold an expired or drifted node.
                "terminationGracePeriod": scaling.termination_grace_period,
            },
        },
        "disruption": _disruption(pool.config.workload, str(scaling.consolidate_after)),
        # The hard cost cap: GPUs, CPU and memory of at most `nodes` of the largest allowed instance type.
        # `nodes` is the binding cap: a time-sliced node reports replicas x GPUs of nvidia.com/gpu.
        "limits": {
            "nodes": str(nodes),
            "nvidia.com/gpu": str(nodes * pool.allocatable_per_node),
            "cpu": str(nodes * vcpus),
            "memory": f"{nodes * memory}Gi",
        },
    }
    if len(pool.capacity_types) > 1:
        # First choice 100, last 10: [spot, on-demand] -> 100, 10; [reserved, spot, on-demand] -> 100, 50, 10.
        place = pool.capacity_types.index(capacity)
        spec["weight"] = WEIGHTS[-1] if place == len(pool.capacity_types) - 1 else WEIGHTS[place]
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": group.name},
        "spec": spec,
    }


def cpu_node_pool(scaling: ScalingConfig) -> dict[str, Any]:
    """General-purpose CPU nodes for Ray CPU workers and preprocessing; Karpenter prefers spot."""
    cpu = scaling.cpu_pool
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": CPU_POOL_NAME},
        "spec": {
            "template": {
                "metadata": {"labels": {LABEL_ROLE: CPU_WORKER_ROLE}},
                "spec": {
                    "nodeClassRef": node_class_ref(CPU_POOL_NAME),
                    "requirements": [
                        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]},
                        {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["5"]},
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(cpu.capacity)},
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                    ],
                    "expireAfter": scaling.expire_after,
                    "terminationGracePeriod": scaling.termination_grace_period,
                },
            },
            "disruption": _disruption("dev", str(scaling.consolidate_after)),
            "limits": {"cpu": str(cpu.max_cpu), "memory": f"{cpu.max_memory_gib}Gi"},
        },
    }


def shared_gpu_node_overlay(pool: ResolvedGpuPool, group: CapacityGroup) -> dict[str, Any]:
    """What a node of a shared-GPU NodePool will advertise once the device plugin (time-slicing) or the MIG manager
    has done its work. Karpenter's instance types know whole GPUs only: without this it never launches a node for a
    pod that asks for MIG slices, and launches one node per pod on a time-sliced pool. Under the mixed strategy a
    partitioned node advertises no whole GPU."""
    capacity = {resource: str(count) for resource, count in pool.advertised.items()}
    if GPU_RESOURCE not in capacity:
        capacity[GPU_RESOURCE] = "0"
    return {
        "apiVersion": "karpenter.sh/v1alpha1",
        "kind": "NodeOverlay",
        "metadata": {"name": group.name},
        "spec": {
            "requirements": [{"key": "karpenter.sh/nodepool", "operator": "In", "values": [group.name]}],
            "capacity": capacity,
        },
    }


def karpenter_objects(scaling: ScalingConfig, handle: ClusterHandle, role: Any) -> list[dict[str, Any]]:
    discovery = aws_info(handle).discovery_tag
    objects: list[dict[str, Any]] = []
    for pool in handle.gpu_pools:
        # Cost allocation on everything Karpenter launches: the stack's tags, the pool, the team it serves.
        tags = pool.cost_tags()
        objects.append(
            ec2_node_class(
                pool.name,
                discovery,
                role,
                scaling,
                pool.config.disk_gib,
                pool.shape.local_nvme,
                tags,
                pool.config.reservations,
            )
        )
        objects += [gpu_node_pool(pool, group, scaling) for group in pool.karpenter_node_pools]
        if scaling.node_overlay and pool.config.sharing.mode != "none":
            objects += [shared_gpu_node_overlay(pool, group) for group in pool.karpenter_node_pools]
    if scaling.cpu_pool.enabled:
        tags = handle.platform.pool_cost_tags(CPU_POOL_NAME, ())
        objects.append(ec2_node_class(CPU_POOL_NAME, discovery, role, scaling, 100, False, tags))
        objects.append(cpu_node_pool(scaling))
    return objects


class KarpenterNodePools(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        scaling: ScalingConfig,
        handle: ClusterHandle,
        node_role_name: pulumi.Input[str],
        release: KarpenterRelease,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ml-platform:autoscaling:KarpenterNodePools", name, None, opts)
        # Created after the CRDs, and destroyed before the controller: its finalizers terminate the instances.
        child = pulumi.ResourceOptions(
            parent=self, provider=handle.provider, depends_on=[release.crds, release.controller]
        )
        register_all(karpenter_objects(scaling, handle, node_role_name), child)
        self.register_outputs({})
