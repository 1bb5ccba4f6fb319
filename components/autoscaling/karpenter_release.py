"""`KarpenterRelease`: the karpenter-crd chart, then the karpenter chart without its CRDs.

The CRDs come from their own chart so `helm upgrade` moves them with Karpenter (Helm never upgrades a
chart's crds/ directory). The controller runs on the system node group, two replicas behind a PDB.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.autoscaling.karpenter_iam import SERVICE_ACCOUNT
from components.cluster.handle import ClusterHandle, aws_info
from components.kube import helm_release
from components.versions import KARPENTER, KARPENTER_CRD
from vocabulary.labels import SYSTEM_NODE_SELECTOR


def karpenter_values(
    cluster_name: Any, cluster_endpoint: Any, interruption_queue: Any, node_overlay: bool = False
) -> dict[str, Any]:
    """Helm values: every key path exists in the pinned chart's values.yaml (tests check)."""
    settings: dict[str, Any] = {
        "clusterName": cluster_name,
        # Known already: saves the controller an eks:DescribeCluster call at start-up.
        "clusterEndpoint": cluster_endpoint,
        "interruptionQueue": interruption_queue,
    }
    if node_overlay:
        # NodeOverlay is alpha in Karpenter 1.14: MIG pools declare their slices with it (scaling.nodeOverlay).
        settings["featureGates"] = {"nodeOverlay": True}
    return {
        "settings": settings,
        # The name the Pod Identity association expects, whatever the release is called.
        "serviceAccount": {"name": SERVICE_ACCOUNT},
        "replicas": 2,
        "podDisruptionBudget": {"name": "karpenter", "maxUnavailable": 1},
        # Never on capacity Karpenter itself manages: the system managed node group.
        "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
        "controller": {
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        },
    }


class KarpenterRelease(pulumi.ComponentResource):
    crds: k8s.helm.v3.Release
    controller: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        handle: ClusterHandle,
        interruption_queue: pulumi.Input[str],
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ml-platform:autoscaling:KarpenterRelease", name, None, opts)
        info = aws_info(handle)
        base = pulumi.ResourceOptions(parent=self, provider=handle.provider, depends_on=handle.ready)
        self.crds = helm_release(f"{name}-crd", KARPENTER_CRD, {}, base)
        self.controller = helm_release(
            name,
            KARPENTER,
            karpenter_values(
                info.cluster_name, info.cluster_endpoint, interruption_queue, handle.platform.node_overlay
            ),
            pulumi.ResourceOptions.merge(
                base, pulumi.ResourceOptions(depends_on=[*handle.ready, self.crds, *depends_on])
            ),
            skip_crds=True,  # owned by the karpenter-crd release above
        )
        self.register_outputs({"version": KARPENTER.version})
