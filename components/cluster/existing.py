"""`ExistingCluster`: layer the platform onto a cluster created elsewhere (on-prem, bare metal, kind).

Its GPU pools describe nodes that already exist; they must carry the portable labels and the
`nvidia.com/gpu=true:NoSchedule` taint (the README shows the kubectl commands for a kind cluster).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.handle import ClusterHandle
from components.config.cluster import ExistingSettings
from components.config.platform import PlatformConfig
from components.gpu_pools import platform_facts, resolve_gpu_pools


def provider_args(existing: ExistingSettings) -> dict[str, Any]:
    """Provider settings for a kubeconfig given as content (secret), as a file path, or as a context."""
    args: dict[str, Any] = {"enable_server_side_apply": True}
    if existing.kubeconfig:
        args["kubeconfig"] = pulumi.Output.secret(existing.kubeconfig)
    elif existing.kubeconfig_path:
        # The provider accepts a path too; the path itself is not sensitive, the file stays local.
        args["kubeconfig"] = pulumi.Output.secret(existing.kubeconfig_path)
    if existing.context:
        args["context"] = existing.context
    return args


class ExistingCluster(pulumi.ComponentResource):
    handle: ClusterHandle

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ml-platform:cluster:ExistingCluster", name, None, opts)
        cluster = config.cluster
        existing = cluster.existing or ExistingSettings()
        provider = k8s.Provider(f"{name}-k8s", **provider_args(existing), opts=pulumi.ResourceOptions(parent=self))
        self.handle = ClusterHandle(
            name=cluster.name,
            region=cluster.region,
            provider=provider,
            platform=platform_facts(config),
            gpu_pools=resolve_gpu_pools(config),
        )
        self.register_outputs({"context": existing.context or ""})
