"""`KubeRay` (`ml-platform:kuberay`): the KubeRay operator and its CRDs.

Helm installs a chart's crds/ folder on first install and never upgrades it, so a new KubeRay pin would run a new
operator against old CRDs. The platform applies the CRDs itself, server-side, from the pinned tag's
`ray-operator/config/crd/bases` (what KubeRay's docs apply for upgrades), and installs the chart with
`skip_crds`. Bumping KUBERAY_VERSION then updates both.

The operator submits RayJobs and reads RayService status through each Ray head's dashboard port: team namespaces
deny ingress by default, so each gets a NetworkPolicy for that port from the operator's namespace
(`components/teams.py`).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config.kuberay import KubeRayConfig
from components.kube import helm_release, register
from components.layer import KUBERAY_OPERATOR_READY, PROMETHEUS_CRDS, Layer
from components.versions import KUBERAY_CRD_FILES, KUBERAY_CRD_URL, KUBERAY_OPERATOR
from vocabulary.labels import MANAGED_BY, SYSTEM_NODE_SELECTOR
from vocabulary.namespaces import KUBERAY_NAMESPACE


def crd_urls(version: str) -> list[str]:
    return [KUBERAY_CRD_URL.format(version=version, file=file) for file in KUBERAY_CRD_FILES]


def operator_values(prometheus: bool) -> dict[str, Any]:
    return {
        "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
        # Restricted Pod Security: the chart's container context already meets it; the pod says so too.
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "metrics": {"serviceMonitor": {"enabled": prometheus}},
    }


def operator_namespace() -> dict[str, Any]:
    labels = {**MANAGED_BY, "pod-security.kubernetes.io/enforce": "restricted"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KUBERAY_NAMESPACE, "labels": labels}}


class KubeRay(Layer[KubeRayConfig]):
    TYPE = "ml-platform:kuberay:KubeRay"

    def build(self) -> dict[str, Any]:
        if not self.section.enabled:
            return {"chart": None}
        handle = self.handle
        namespace = register(operator_namespace(), self.in_cluster())
        # Deleting a CRD deletes every RayCluster, RayJob and RayService with it: kept when the stack stops
        # managing it, and protected where the cluster is.
        keep = pulumi.ResourceOptions(retain_on_delete=True, protect=handle.platform.protect)
        crds = [
            k8s.yaml.v2.ConfigFile(
                f"kuberay-crds-{file.removesuffix('.yaml')}",
                file=url,
                opts=pulumi.ResourceOptions.merge(self.in_cluster(), keep),
            )
            for file, url in zip(KUBERAY_CRD_FILES, crd_urls(KUBERAY_OPERATOR.version), strict=True)
        ]
        prometheus = handle.installed(PROMETHEUS_CRDS)
        release = helm_release(
            KUBERAY_OPERATOR.name,
            KUBERAY_OPERATOR,
            operator_values(bool(prometheus)),
            self.in_cluster(namespace, *crds, *prometheus),
            create_namespace=False,
            skip_crds=True,
        )
        handle.provide(KUBERAY_OPERATOR_READY, release)
        return {"chart": KUBERAY_OPERATOR.name}
