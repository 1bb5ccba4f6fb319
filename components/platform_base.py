"""In-cluster objects every stack gets: the platform namespace and, on EKS, a gp3 default StorageClass.

Built by plain functions (config in, dicts out) so tests can check them directly.
"""

from __future__ import annotations

from typing import Any

from components.cluster.handle import ClusterHandle
from components.kube import register_all
from components.layer import Layer
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


class PlatformBase(Layer[None]):
    """No settings of its own: what it creates follows from the cloud."""

    TYPE = "ml-platform:platform:PlatformBase"

    def build(self) -> dict[str, Any]:
        register_all(base_objects(self.handle), self.in_cluster())
        return {}
