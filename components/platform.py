"""`MlPlatform`: the cluster layer, then the in-cluster layers in order.

Every in-cluster layer is `Layer(name, section, handle, opts)`: its own config section and the `ClusterHandle`,
nothing else (components/layer.py). Adding a layer is one file and one line below.
"""

from __future__ import annotations

import pulumi

from components.admission import AdmissionPolicies
from components.autoscaling.layer import Autoscaling
from components.cluster.handle import ClusterHandle
from components.config.platform import PlatformConfig
from components.gpu.layer import GpuStack
from components.kserve import KServe
from components.kuberay import KubeRay
from components.kueue import Kueue
from components.monitoring.layer import Monitoring
from components.platform_base import PlatformBase
from components.storage.layer import Storage
from components.teams import Teams
from components.trainer import Trainer


def cluster_layer(config: PlatformConfig, opts: pulumi.ResourceOptions) -> ClusterHandle:
    """The one layer that reads the whole config: it resolves the GPU pools and the cross-section facts once."""
    # Import only the cloud in use: pulumi_aws / pulumi_gcp imports cost seconds.
    match config.cluster.cloud:
        case "aws":
            from components.cluster.eks import EksCluster

            return EksCluster(config.cluster.name, config, opts).handle
        case "gcp":
            from components.cluster.gke import GkeCluster

            return GkeCluster(config.cluster.name, config, opts).handle
        case _:
            from components.cluster.existing import ExistingCluster

            return ExistingCluster(config.cluster.name, config, opts).handle


class MlPlatform(pulumi.ComponentResource):
    handle: ClusterHandle

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ml-platform:index:MlPlatform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        handle = self.handle = cluster_layer(config, child)
        # In-cluster layers, in order: CRDs and controllers before what uses them.
        PlatformBase(f"{handle.name}-base", None, handle, child)
        Autoscaling("autoscaling", config.scaling, handle, child)
        Monitoring("monitoring", config.monitoring, handle, child)
        GpuStack("gpu", config.gpu, handle, child)
        AdmissionPolicies("admission", config.policies, handle, child)
        Kueue("kueue", config.kueue, handle, child)
        KubeRay("kuberay", config.kuberay, handle, child)
        Trainer("trainer", config.trainer, handle, child)
        KServe("kserve", config.kserve, handle, child)
        Storage("storage", config.storage, handle, child)
        Teams("teams", config.teams, handle, child)
        self.register_outputs({"cloud": handle.cloud, "gpuPools": [p.summary() for p in handle.gpu_pools]})
