"""`ClusterHandle`: what every cluster component (EKS, GKE, existing) gives the layers above it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.config.base import Cloud
from components.gpu_pools import CapacityGroup, PlatformFacts, ResolvedGpuPool


@dataclass(frozen=True)
class AwsClusterInfo:
    """EKS facts later layers need (Karpenter discovery, IAM, Pod Identity)."""

    cluster_name: pulumi.Output[str]
    cluster_endpoint: pulumi.Output[str]
    partition: str
    dns_suffix: str
    account_id: str
    aws_provider: pulumi.ProviderResource
    # Karpenter finds the cluster's subnets and node security group by this tag.
    discovery_tag: dict[str, str]
    # The managed node groups of the GPU pools (`ResolvedGpuPool.node_groups`): cluster-autoscaler tags their ASGs.
    gpu_node_groups: tuple[tuple[ResolvedGpuPool, CapacityGroup, pulumi.CustomResource], ...] = ()
    # Where the nodes are: shared filesystems put their mount targets in these subnets and admit this group
    # (the EKS cluster security group, which managed and Karpenter nodes carry).
    vpc_id: pulumi.Input[str] = ""
    private_subnet_ids: tuple[pulumi.Input[str], ...] = ()
    node_security_group_id: pulumi.Input[str] = ""


@dataclass(frozen=True)
class GcpClusterInfo:
    """GKE facts later layers need (Workload Identity principals, Filestore's network, the GCP provider)."""

    project: str
    # Workload Identity Federation principals name the project by number.
    project_number: str
    network: pulumi.Input[str]
    gcp_provider: pulumi.ProviderResource


@dataclass(frozen=True)
class ClusterHandle:
    """The one interface every cloud yields: later layers take (config section, ClusterHandle).

    Facts that cut across config sections (the environment, the autoscaler, cost tags, the teams a pool serves)
    are resolved once by the cluster layer and read from here, never from another layer's section.
    """

    name: str
    region: str | None
    provider: k8s.Provider
    platform: PlatformFacts
    gpu_pools: tuple[ResolvedGpuPool, ...]
    # Resources that must exist before in-cluster objects are created (node groups, add-ons).
    ready: list[pulumi.Resource] = field(default_factory=list)
    aws: AwsClusterInfo | None = None
    gcp: GcpClusterInfo | None = None
    # What earlier in-cluster layers installed that later ones wait for, by capability (components/layer.py):
    # e.g. the Prometheus operator's CRDs before any ServiceMonitor or PrometheusRule.
    capabilities: dict[str, list[pulumi.Resource]] = field(default_factory=dict)
    # Values an earlier layer computes for later ones (e.g. the checkpoint bucket's URI), by name.
    values: dict[str, pulumi.Input[str]] = field(default_factory=dict)

    def provide(self, capability: str, *resources: pulumi.Resource) -> None:
        self.capabilities.setdefault(capability, []).extend(resources)

    def installed(self, capability: str) -> list[pulumi.Resource]:
        """The resources that installed a capability; empty when no layer provides it on this cluster."""
        return list(self.capabilities.get(capability, ()))

    def publish(self, name: str, value: pulumi.Input[str]) -> None:
        self.values[name] = value

    def published(self, name: str) -> pulumi.Input[str] | None:
        return self.values.get(name)

    @property
    def cloud(self) -> Cloud:
        return self.platform.cloud


def aws_info(handle: ClusterHandle) -> AwsClusterInfo:
    if handle.aws is None:
        raise ValueError(f"cluster {handle.name} is not an EKS cluster")
    return handle.aws


def gcp_info(handle: ClusterHandle) -> GcpClusterInfo:
    if handle.gcp is None:
        raise ValueError(f"cluster {handle.name} is not a GKE cluster")
    return handle.gcp
