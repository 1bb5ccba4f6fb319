"""`MlPlatform`: wires the layers in order. Each layer takes (config section, ClusterHandle) only."""

from __future__ import annotations

import pulumi

from components.admission import AdmissionPolicies
from components.cluster.handle import ClusterHandle
from components.config import PlatformConfig
from components.platform_base import PlatformBase


def _cluster(name: str, config: PlatformConfig, opts: pulumi.ResourceOptions) -> ClusterHandle:
    # Import only the cloud in use: pulumi_aws / pulumi_gcp imports cost seconds.
    match config.cluster.cloud:
        case "aws":
            from components.cluster.eks import EksCluster

            return EksCluster(name, config, opts).handle
        case "gcp":
            from components.cluster.gke import GkeCluster

            return GkeCluster(name, config, opts).handle
        case _:
            from components.cluster.existing import ExistingCluster

            return ExistingCluster(name, config, opts).handle


def _autoscaling(config: PlatformConfig, handle: ClusterHandle, opts: pulumi.ResourceOptions) -> None:
    """Karpenter or cluster-autoscaler on EKS; GKE scales node pools itself (configured in GkeCluster)."""
    if handle.cloud != "aws":
        return
    if config.autoscaler == "karpenter":
        from components.autoscaling.karpenter_iam import KarpenterIam
        from components.autoscaling.karpenter_nodepools import KarpenterNodePools
        from components.autoscaling.karpenter_release import KarpenterRelease

        iam = KarpenterIam("karpenter", handle, opts)
        release = KarpenterRelease("karpenter", handle, iam.queue_name, iam.ready, opts)
        KarpenterNodePools("karpenter", config, handle, iam.node_role_name, release, opts)
    elif config.autoscaler == "cluster-autoscaler":
        from components.autoscaling.cluster_autoscaler import ClusterAutoscaler

        ClusterAutoscaler("cluster-autoscaler", config, handle, opts)


class MlPlatform(pulumi.ComponentResource):
    handle: ClusterHandle

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ml-platform:index:MlPlatform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.handle = _cluster(config.cluster.name, config, child)
        PlatformBase(f"{config.cluster.name}-base", self.handle, child)
        _autoscaling(config, self.handle, child)
        policies = config.policies
        AdmissionPolicies(
            "admission",
            policies.enforcement,
            self.handle,
            policies.default_shm,
            tuple(policies.exempt_namespaces),
            child,
        )
        self.register_outputs({"cloud": self.handle.cloud, "gpuPools": [p.summary() for p in self.handle.gpu_pools]})
