"""`ClusterHandle`: what every cluster component (EKS, GKE, existing) gives the layers above it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import CATALOG, GPU_MODELS, GpuModel, NodeShape
from components.config import CapacityType, Cloud, GpuPool, PlatformConfig
from vocabulary.labels import (
    GKE_GPU_TAINT_VALUE,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
    LABEL_CAPACITY,
    LABEL_GPU,
    LABEL_POOL,
    LABEL_SHARING,
    LABEL_WORKLOAD,
)
from vocabulary.resources import GPU_RESOURCE


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"

    def as_k8s(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "effect": self.effect}


@dataclass(frozen=True)
class ResolvedGpuPool:
    """A GPU pool from the stack file, resolved against the catalogue for one cloud."""

    config: GpuPool
    cloud: Cloud
    model: GpuModel
    shape: NodeShape
    taint: Taint

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def capacity_types(self) -> tuple[CapacityType, ...]:
        return self.config.capacity

    def labels(self, capacity: CapacityType) -> dict[str, str]:
        """Portable labels of a node of this pool with the given capacity type."""
        return {
            LABEL_GPU: self.model.key,
            LABEL_POOL: self.name,
            LABEL_CAPACITY: capacity,
            LABEL_WORKLOAD: self.config.workload,
            LABEL_SHARING: self.config.sharing.mode,
        }

    @property
    def gpu_resource(self) -> str:
        """The extended resource pods request on this pool: nvidia.com/gpu or nvidia.com/mig-<profile>."""
        sharing = self.config.sharing
        if sharing.mode == "mig" and sharing.profile:
            profile = self.model.mig_profile(sharing.profile)
            if profile is not None:
                return profile.resource_name
        return GPU_RESOURCE

    @property
    def allocatable_per_node(self) -> int:
        """How many units of `gpu_resource` one node advertises."""
        sharing, gpus = self.config.sharing, self.shape.gpus_per_node
        if sharing.mode == "mig" and sharing.profile:
            profile = self.model.mig_profile(sharing.profile)
            return gpus * (profile.per_gpu if profile else 1)
        if sharing.mode == "time-slicing" and sharing.replicas:
            return gpus * sharing.replicas
        return gpus

    @property
    def max_gpus(self) -> int:
        """Physical GPUs at maxNodes: the pool's cost ceiling."""
        return self.config.max_nodes * self.shape.gpus_per_node

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "gpu": self.model.key,
            "instanceType": self.shape.instance_type,
            "acceleratorType": self.shape.accelerator_type,
            "gpusPerNode": self.shape.gpus_per_node,
            "capacity": list(self.capacity_types),
            "minNodes": self.config.min_nodes,
            "maxNodes": self.config.max_nodes,
            "maxGpus": self.max_gpus,
            "gpuResource": self.gpu_resource,
            "allocatablePerNode": self.allocatable_per_node,
            "scalesToZero": self.config.min_nodes == 0,
        }


def resolve_gpu_pools(config: PlatformConfig) -> tuple[ResolvedGpuPool, ...]:
    """Pools are validated before this runs, so every lookup succeeds."""
    cloud = config.cluster.cloud
    taint = Taint(GPU_TAINT_KEY, GKE_GPU_TAINT_VALUE if cloud == "gcp" else GPU_TAINT_VALUE)
    resolved = []
    for pool in config.gpu_pools:
        shape = CATALOG.shape(cloud, pool.gpu, pool.gpus_per_node)
        if shape is None:  # pragma: no cover - config_rules rejects this first
            raise ValueError(f"no {pool.gpu} x{pool.gpus_per_node} on {cloud}")
        resolved.append(ResolvedGpuPool(pool, cloud, GPU_MODELS[pool.gpu], shape, taint))
    return tuple(resolved)


@dataclass(frozen=True)
class AwsClusterInfo:
    """EKS facts later layers need (Karpenter discovery, IAM, Pod Identity)."""

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    cluster_endpoint: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    vpc_id: pulumi.Input[str]
    private_subnet_ids: list[pulumi.Input[str]]
    partition: str
    dns_suffix: str
    account_id: str
    aws_provider: pulumi.ProviderResource
    node_role_arn: pulumi.Output[str]
    node_role_name: pulumi.Output[str]
    discovery_tag: dict[str, str]
    # cluster-autoscaler mode: the managed node group of each (GPU pool, capacity type).
    gpu_node_groups: tuple[tuple[ResolvedGpuPool, CapacityType, pulumi.CustomResource], ...] = ()


@dataclass(frozen=True)
class GcpClusterInfo:
    project: str
    cluster_name: pulumi.Output[str]
    cluster_id: pulumi.Output[str]
    node_service_account_email: pulumi.Output[str]
    gcp_provider: pulumi.ProviderResource


@dataclass(frozen=True)
class ClusterHandle:
    """The one interface every cloud yields: later layers take (config section, ClusterHandle)."""

    name: str
    cloud: Cloud
    region: str | None
    kubernetes_version: str
    provider: k8s.Provider
    gpu_pools: tuple[ResolvedGpuPool, ...]
    # Resources that must exist before in-cluster objects are created (node groups, add-ons).
    ready: list[pulumi.Resource] = field(default_factory=list)
    aws: AwsClusterInfo | None = None
    gcp: GcpClusterInfo | None = None


def aws_info(handle: ClusterHandle) -> AwsClusterInfo:
    if handle.aws is None:
        raise ValueError(f"cluster {handle.name} is not an EKS cluster")
    return handle.aws
