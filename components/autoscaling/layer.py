"""The autoscaling layer (`ml-platform:scaling`): Karpenter or cluster-autoscaler on EKS, as the handle's
autoscaler says. GKE scales its node pools itself (configured by the cluster layer); existing clusters bring
their own.

It keeps the layer contract, `Autoscaling(name, section, handle, opts)`, but groups nothing under a component
of its own: its components (KarpenterIam, KarpenterRelease, KarpenterNodePools, ClusterAutoscaler) sit directly
under the platform, where deployed stacks have them (a new parent would change every resource's URN).
"""

from __future__ import annotations

import pulumi

from components.cluster.handle import ClusterHandle
from components.config.scaling import ScalingConfig


class Autoscaling:
    def __init__(
        self, name: str, section: ScalingConfig, handle: ClusterHandle, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        del name  # the components are named after the tool (karpenter, cluster-autoscaler), as deployed
        opts = opts or pulumi.ResourceOptions()
        if handle.cloud != "aws":
            return
        # Imported here: only EKS stacks load pulumi_aws (its import costs seconds).
        if handle.platform.autoscaler == "karpenter":
            from components.autoscaling.karpenter_iam import KarpenterIam
            from components.autoscaling.karpenter_nodepools import KarpenterNodePools
            from components.autoscaling.karpenter_release import KarpenterRelease

            iam = KarpenterIam("karpenter", handle, opts)
            release = KarpenterRelease("karpenter", handle, iam.queue_name, iam.ready, opts)
            KarpenterNodePools("karpenter", section, handle, iam.node_role_name, release, opts)
        elif handle.platform.autoscaler == "cluster-autoscaler":
            from components.autoscaling.cluster_autoscaler import ClusterAutoscaler

            ClusterAutoscaler("cluster-autoscaler", section, handle, opts)
