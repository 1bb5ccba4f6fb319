"""In-cluster objects every stack gets: the platform namespace and, on EKS, a gp3 default StorageClass.

Built by plain functions (config in, dicts out) so tests can check them directly.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.handle import ClusterHandle
from vocabulary.labels import MANAGED_BY
from vocabulary.namespaces import PLATFORM_NAMESPACE


def platform_namespace() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": PLATFORM_NAMESPACE,
            "labels": {
                **MANAGED_BY,
                # Controllers only: the restricted Pod Security level would block GPU device plugins,
                # so it is enforced per team namespace, not here.
                "pod-security.kubernetes.io/warn": "restricted",
            },
        },
    }


def eks_gp3_storage_class() -> dict[str, Any]:
    """EKS ships only gp2 (not default since 1.30); gp3 is cheaper and faster, and encrypted here."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "gp3",
            "labels": dict(MANAGED_BY),
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true", "fsType": "ext4"},
        "reclaimPolicy": "Delete",
        # Bind where the pod lands, so a GPU pod's volume is in the GPU node's AZ.
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


def base_objects(handle: ClusterHandle) -> list[dict[str, Any]]:
    objects = [platform_namespace()]
    if handle.cloud == "aws":
        objects.append(eks_gp3_storage_class())
    return objects


class PlatformBase(pulumi.ComponentResource):
    def __init__(self, name: str, handle: ClusterHandle, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ml-platform:platform:PlatformBase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=handle.provider, depends_on=handle.ready)
        for obj in base_objects(handle):
            meta = obj["metadata"]
            if obj["kind"] == "Namespace":
                k8s.core.v1.Namespace(f"ns-{meta['name']}", metadata=meta, opts=child)
            elif obj["kind"] == "StorageClass":
                k8s.storage.v1.StorageClass(
                    f"sc-{meta['name']}",
                    metadata=meta,
                    provisioner=obj["provisioner"],
                    parameters=obj["parameters"],
                    reclaim_policy=obj["reclaimPolicy"],
                    volume_binding_mode=obj["volumeBindingMode"],
                    allow_volume_expansion=obj["allowVolumeExpansion"],
                    opts=child,
                )
        self.register_outputs({})
