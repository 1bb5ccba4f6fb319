"""`KarpenterNodePools`: one EC2NodeClass and one NodePool per capacity type of every GPU pool, plus a CPU pool.

Why a NodePool per capacity type: every GPU node carries a correct `ml-platform.io/capacity` label, and a
template label is static. With [spot, on-demand] the spot NodePool has the higher weight, so Karpenter tries
spot first and falls back to on-demand when spot capacity is unavailable.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.autoscaling.karpenter_release import KarpenterRelease
from components.cluster.handle import ClusterHandle, ResolvedGpuPool
from components.config import CapacityType, PlatformConfig, ScalingConfig
from vocabulary.labels import LABEL_ROLE

NODE_CLASS_GROUP = "karpenter.k8s.aws"
SPOT_WEIGHT, FALLBACK_WEIGHT = 100, 10
CPU_POOL = "cpu"


def node_class_ref(name: str) -> dict[str, str]:
    return {"group": NODE_CLASS_GROUP, "kind": "EC2NodeClass", "name": name}


def ec2_node_class(
    name: str,
    cluster_name: str,
    role: Any,
    scaling: ScalingConfig,
    disk_gib: int,
    local_nvme: bool,
    tags: dict[str, str],
) -> dict[str, Any]:
    discovery = [{"tags": {"karpenter.sh/discovery": cluster_name}}]
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


def karpenter_nodes(pool: ResolvedGpuPool, capacity: CapacityType) -> int:
    """Nodes Karpenter may launch for this capacity type: a baseline group already holds minNodes."""
    baseline = pool.config.min_nodes if capacity == pool.capacity_types[0] else 0
    return pool.config.max_nodes - baseline


def gpu_node_pool(pool: ResolvedGpuPool, capacity: CapacityType, scaling: ScalingConfig) -> dict[str, Any]:
    nodes = karpenter_nodes(pool, capacity)
    vcpus, memory = pool.shape.largest()
    spec: dict[str, Any] = {
        "template": {
            "metadata": {"labels": pool.labels(capacity)},
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
        spec["weight"] = SPOT_WEIGHT if capacity == "spot" else FALLBACK_WEIGHT
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": f"{pool.name}-{capacity}"},
        "spec": spec,
    }


def cpu_node_pool(scaling: ScalingConfig) -> dict[str, Any]:
    """General-purpose CPU nodes for Ray CPU workers and preprocessing; Karpenter prefers spot."""
    cpu = scaling.cpu_pool
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": CPU_POOL},
        "spec": {
            "template": {
                "metadata": {"labels": {LABEL_ROLE: "cpu-workers"}},
                "spec": {
                    "nodeClassRef": node_class_ref(CPU_POOL),
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


def pool_tags(config: PlatformConfig, pool: str | None) -> dict[str, str]:
    """Cost allocation on everything Karpenter launches: the stack's tags, the pool, the owning team."""
    # A team with no `pools` may use every pool.
    teams = [t.name for t in config.teams if pool is not None and (not t.pools or pool in t.pools)]
    return {
        **config.cluster.tags,
        "ml-platform.io/cluster": config.cluster.name,
        "ml-platform.io/environment": config.environment,
        "ml-platform.io/pool": pool or CPU_POOL,
        "ml-platform.io/team": teams[0] if len(teams) == 1 else "shared",
    }


def karpenter_objects(config: PlatformConfig, handle: ClusterHandle, role: Any) -> list[dict[str, Any]]:
    scaling, cluster = config.scaling, config.cluster.name
    objects: list[dict[str, Any]] = []
    for pool in handle.gpu_pools:
        objects.append(
            ec2_node_class(
                pool.name,
                cluster,
                role,
                scaling,
                pool.config.disk_gib,
                pool.shape.local_nvme,
                pool_tags(config, pool.name),
            )
        )
        if pool.config.sharing.mode == "mig":
            # Karpenter cannot plan for nvidia.com/mig-* slices: MIG pools are fixed baseline groups only.
            continue
        objects += [gpu_node_pool(pool, c, scaling) for c in pool.capacity_types if karpenter_nodes(pool, c) > 0]
    if scaling.cpu_pool.enabled:
        objects.append(ec2_node_class(CPU_POOL, cluster, role, scaling, 100, False, pool_tags(config, None)))
        objects.append(cpu_node_pool(scaling))
    return objects


class KarpenterNodePools(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        config: PlatformConfig,
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
        for obj in karpenter_objects(config, handle, node_role_name):
            kind, meta = obj["kind"], obj["metadata"]
            k8s.apiextensions.CustomResource(
                f"{kind.lower()}-{meta['name']}",
                api_version=obj["apiVersion"],
                kind=kind,
                metadata=meta,
                spec=obj["spec"],
                opts=child,
            )
        self.register_outputs({})
