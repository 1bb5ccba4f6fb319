"""The NVIDIA GPU Operator's values, built from the resolved pools (EKS and existing clusters).

- Driver and container toolkit: off on EKS (the AL2023 NVIDIA and Bottlerocket NVIDIA AMIs ship both), as
  `ml-platform:gpu` says on existing clusters.
- Device plugin, GPU Feature Discovery, Node Feature Discovery (which finds the NVIDIA PCI devices the operator
  then labels `nvidia.com/gpu.present`), dcgm-exporter with a ServiceMonitor, the MIG manager.
- Time-slicing: one named device-plugin config per time-sliced pool, selected by the pool's nodes through
  `nvidia.com/device-plugin.config` (`ResolvedGpuPool.node_labels`).
- MIG: the MIG manager reads our own mig-parted config: `all-disabled`, and every layout a MIG pool's nodes select
  through `nvidia.com/mig.config`, per GPU model (device filter), so a label never names a layout it lacks.
- Operands tolerate the GPU taint; the operator and NFD's master and garbage collector run on system nodes.
"""

from __future__ import annotations

from typing import Any

import yaml

from components.config.gpu import GpuStackConfig
from components.gpu.dcgm import dcgm_metrics_csv
from components.gpu_pools import ResolvedGpuPool
from vocabulary.labels import GPU_TAINT_KEY, MANAGED_BY, SYSTEM_NODE_SELECTOR
from vocabulary.namespaces import GPU_NAMESPACE
from vocabulary.resources import GPU_RESOURCE

DEVICE_PLUGIN_CONFIG_MAP = "ml-platform-device-plugin-configs"
MIG_CONFIG_MAP = "ml-platform-mig-configs"
DCGM_METRICS_CONFIG_MAP = "ml-platform-dcgm-metrics"
MIG_DISABLED = "all-disabled"
SYSTEM_NODES = SYSTEM_NODE_SELECTOR
# Every operand DaemonSet gets exactly these (the value replaces the chart's list): GPU nodes only.
GPU_TOLERATIONS = [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]


def time_slicing_config(replicas: int) -> str:
    """A device-plugin config (v1) that shares every GPU `replicas` ways under its own name, nvidia.com/gpu. A pod
    asking for more than one shared GPU is refused: it would get no more compute than one."""
    config = {
        "version": "v1",
        "sharing": {
            "timeSlicing": {
                "renameByDefault": False,
                "failRequestsGreaterThanOne": True,
                "resources": [{"name": GPU_RESOURCE, "replicas": replicas}],
            }
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def device_plugin_configs(pools: tuple[ResolvedGpuPool, ...]) -> dict[str, str]:
    """Named configs by the value a pool's nodes select them with."""
    return {
        pool.device_plugin_config: time_slicing_config(pool.config.sharing.replicas or 2)
        for pool in pools
        if pool.device_plugin_config is not None
    }


def mig_parted_config(pools: tuple[ResolvedGpuPool, ...]) -> dict[str, Any]:
    """mig-parted's config (v1): `all-disabled`, and for each layout a MIG pool selects one entry per GPU model that
    uses it, filtered to that model's PCI device ids (the same layout name may split an A100-40GB and an H100
    differently)."""
    configs: dict[str, list[dict[str, Any]]] = {MIG_DISABLED: [{"devices": "all", "mig-enabled": False}]}
    for pool in pools:
        if pool.mig_config is None:
            continue
        entries = configs.setdefault(pool.mig_config, [])
        entry = {
            "device-filter": list(pool.model.pci_device_ids),
            "devices": "all",
            "mig-enabled": True,
            "mig-devices": dict(pool.mig_layout),
        }
        if entry not in entries:
            entries.append(entry)
    return {"version": "v1", "mig-configs": configs}


def mig_config_names(config: dict[str, Any]) -> list[str]:
    return list(config["mig-configs"])


def operator_values(section: GpuStackConfig, pools: tuple[ResolvedGpuPool, ...], cloud: str) -> dict[str, Any]:
    """Helm values of the gpu-operator chart (every key path exists in the pinned chart's values, tests check)."""
    on_eks = cloud == "aws"
    values: dict[str, Any] = {
        "driver": {"enabled": section.driver and not on_eks},
        "toolkit": {"enabled": section.toolkit and not on_eks},
        "nfd": {"enabled": True},
        "gfd": {"enabled": True},
        "daemonsets": {"tolerations": GPU_TOLERATIONS},
        "operator": {"nodeSelector": SYSTEM_NODES},
        "node-feature-discovery": {"master": {"nodeSelector": SYSTEM_NODES}, "gc": {"nodeSelector": SYSTEM_NODES}},
        "devicePlugin": {"enabled": True},
        "mig": {"strategy": section.mig_strategy},
        "migManager": {
            "enabled": True,
            # On cloud VMs a GPU reset often needs a reboot before the new layout takes (NVIDIA's MIG guide); an
            # on-prem node is not rebooted behind its owner's back.
            "env": [
                {"name": "WITH_REBOOT", "value": "true" if on_eks else "false"},
                # Without the operator's toolkit the CDI hook is the AMI's (/usr/bin/nvidia-cdi-hook on AL2023).
                *([{"name": "NVIDIA_CDI_HOOK_PATH", "value": "/usr/bin/nvidia-cdi-hook"}] if on_eks else []),
            ],
            "config": {
                "create": True,
                "name": MIG_CONFIG_MAP,
                "default": MIG_DISABLED,
                "data": {"config.yaml": yaml.safe_dump(mig_parted_config(pools), sort_keys=False)},
            },
        },
        "dcgmExporter": {
            "enabled": True,
            # The fields the alerts and dashboards read, throttling included (not exported by default).
            "config": {"create": True, "name": DCGM_METRICS_CONFIG_MAP, "data": dcgm_metrics_csv()},
            # Keep the GPU's pod, namespace and container (which workload uses it), not the exporter pod's own.
            "serviceMonitor": {"enabled": True, "honorLabels": True, "additionalLabels": dict(MANAGED_BY)},
        },
    }
    if configs := device_plugin_configs(pools):
        values["devicePlugin"]["config"] = {
            "create": True,
            "name": DEVICE_PLUGIN_CONFIG_MAP,
            # Nodes without the label keep the plugin's defaults (whole GPUs).
            "default": "",
            "data": configs,
        }
    return values


def gpu_namespace() -> dict[str, Any]:
    """The GPU stack's namespace: its operands are privileged (driver, toolkit, device plugin, MIG manager)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": GPU_NAMESPACE,
            "labels": {**MANAGED_BY, "pod-security.kubernetes.io/enforce": "privileged"},
        },
    }
