"""`GpuStack` (`ml-platform:gpu`): what makes GPUs schedulable and measured on every GPU pool.

- EKS and existing clusters: the NVIDIA GPU Operator (device plugin, GPU Feature Discovery, NFD, MIG manager,
  dcgm-exporter with a ServiceMonitor), its named device-plugin and MIG configs built from the pools.
- GKE: GKE installs the driver and device plugin and shares GPUs from the node pool's settings; GPU metrics come
  from GKE's managed DCGM collection (configured on the cluster) or, with `gkeMetrics: dcgm-exporter`, from the
  dcgm-exporter chart scraped by the in-cluster Prometheus.
- Karpenter's Bottlerocket GPU nodes: the operator leaves them alone; the dcgm-exporter chart measures them.

Runs after the monitoring layer: the operator creates its ServiceMonitor only when the CRD exists.
"""

from __future__ import annotations

from typing import Any

from components.config.gpu import GpuStackConfig
from components.gpu.dcgm_exporter import dcgm_exporter_values
from components.gpu.operator import gpu_namespace, operator_values
from components.kube import helm_release, register
from components.layer import PROMETHEUS_CRDS, Layer
from components.versions import DCGM_EXPORTER, GPU_OPERATOR, HelmChart


class GpuStack(Layer[GpuStackConfig]):
    TYPE = "ml-platform:gpu:GpuStack"

    def build(self) -> dict[str, Any]:
        handle = self.handle
        charts: list[tuple[HelmChart, dict[str, Any]]] = []
        if handle.cloud == "gcp":
            if self.section.gke_metrics == "dcgm-exporter":
                charts.append((DCGM_EXPORTER, dcgm_exporter_values("gke")))
        else:
            charts.append((GPU_OPERATOR, operator_values(self.section, handle.gpu_pools, handle.cloud)))
            if any(p.karpenter_node_pools and p.gpu_stack(karpenter=True) == "bottlerocket" for p in handle.gpu_pools):
                charts.append((DCGM_EXPORTER, dcgm_exporter_values("bottlerocket")))
        if not charts:
            return {"charts": []}
        namespace = register(gpu_namespace(), self.in_cluster())
        after = [namespace, *handle.installed(PROMETHEUS_CRDS)]
        for chart, values in charts:
            # The namespace is ours (Pod Security labels): Helm must not create it.
            helm_release(chart.name, chart, values, self.in_cluster(*after), create_namespace=False)
        return {"charts": [chart.name for chart, _ in charts]}
