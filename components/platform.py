"""`MlPlatform`: wires the layers in order. Each layer takes (config section, ClusterHandle) only."""

from __future__ import annotations

import pulumi

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


class MlPlatform(pulumi.ComponentResource):
    handle: ClusterHandle

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ml-platform:index:MlPlatform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.handle = _cluster(config.cluster.name, config, child)
        PlatformBase(f"{config.cluster.name}-base", self.handle, child)
        self.register_outputs({"cloud": self.handle.cloud, "gpuPools": [p.summary() for p in self.handle.gpu_pools]})
